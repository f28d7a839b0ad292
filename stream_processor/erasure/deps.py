"""The erasure worker's ports: where it writes to Kafka, its blocking parts, and the
device acknowledgements it reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from edge_agent.errors import WireError
from edge_agent.wire.commands import CommandAck, decode_ack
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure import plan
from stream_processor.erasure.audit import ErasureAudit
from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.progress import Waived
from stream_processor.erasure.withdrawal_tracker import Change
from stream_processor.erasure.withdrawals import WithdrawalBook
from stream_processor.quarantine import Refusal
from stream_processor.store.base import EventStore


class Outbound(Protocol):
    """Where the worker writes to Kafka (awaits the broker's acks=all confirmation)."""

    async def command(self, key: bytes, value: bytes) -> None: ...

    async def consent(self, records: Sequence[tuple[bytes, bytes | None]]) -> None: ...


@dataclass
class Deps:
    """The blocking parts, built in (and used only from) the worker thread."""

    store: EventStore
    book: ErasureBook
    audit: ErasureAudit
    #: Keys of the consent ledger as it stands now (tombstones applied).
    ledger_keys: Callable[[], Iterable[bytes]]
    devices: Callable[[], list[DeviceIdentity]]
    #: Configs of the topics that may hold a copy naming the subject.
    retentions: Callable[[], list[plan.TopicRetention]]
    consent_topic: str
    #: Drops the operator's openings of a subject's audit entries (returns how many).
    forget_openings: Callable[[str], int] = lambda subject: 0
    #: Unlinks the subject from key-card requests of the site (returns how many).
    forget_keycards: Callable[[str, str, str], int] = lambda tenant, site, subject: 0
    #: "gate/device" → the standing waiver of a retired device, per (tenant, site).
    retired: Callable[[str, str], dict[str, Waived]] = lambda tenant, site: {}
    #: Withdrawal commands owed by devices (None: not tracked by this worker).
    withdrawals: WithdrawalBook | None = None
    #: Withdrawals and tombstones on the consent ledger since the last call.
    withdrawn: Callable[[], list[Change]] = list
    #: "sqlite" or "postgres": what the receipt says about the store's free space.
    store_kind: str = "sqlite"
    #: Called at close (consumers, producers).
    closing: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        self.store.close()
        for close in self.closing:
            close()


def read_ack(raw: bytes | None) -> CommandAck | Refusal:
    """A device acknowledgement as the wire contract reads it, or why it is refused."""
    if raw is None:
        return Refusal("missing_value", "acknowledgement without a value")
    try:
        return decode_ack(raw)
    except WireError as exc:
        return Refusal(exc.reason, exc.detail[:300])


__all__ = ["Deps", "Outbound", "read_ack"]
