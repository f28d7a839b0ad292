"""Which gate devices an erasure must hear from: the cloud's shared view, not one host's file.

Two sources, both readable from any host of the deployment:

- the shared device registry (``runtime/registry.py``, in the rights database: every
  device ever registered, removed ones included), never a broker host's account file;
- the device-status ledger (``facegate.devices.status``, compacted, one record per
  device, written by the bridge from what the device itself published under its own
  ACL-pinned account): every device that ever ran, registered now or not.

A device in either is expected. A gate that was unregistered while it still held
templates stays on the status ledger and so keeps owing its acknowledgement until it
gives it or a privacy officer waives it (``facegate erasure waive``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from edge_agent.errors import WireError
from edge_agent.wire.status import decode_status
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure import plan
from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.ledger_index import FollowedTopic
from stream_processor.erasure.progress import ErasureProgress, Waived
from stream_processor.errors import InvalidInput
from stream_processor.runtime.ledger_client import Auth


def identity_of_status(value: bytes) -> DeviceIdentity | None:
    """The device a status record is from (None: not a status record this reads)."""
    try:
        s = decode_status(value)
        return DeviceIdentity(s.tenant, s.site, s.gate, s.device)
    except (WireError, InvalidInput, ValueError):
        return None


def merge(*sources: Iterable[DeviceIdentity]) -> list[DeviceIdentity]:
    """Every device named by any source, once, in a stable order."""
    seen = {d.username: d for source in sources for d in source}
    return [seen[k] for k in sorted(seen)]


class StatusLedgerDevices(FollowedTopic):
    """The devices on the status ledger, followed incrementally (one consumer kept)."""

    group = "facegate-erasure-roster"

    def __init__(
        self, bootstrap: str, topic: str, timeout_s: float = 30.0, auth: Auth | None = None
    ) -> None:
        super().__init__(bootstrap, topic, timeout_s, auth)
        self._known: dict[bytes, DeviceIdentity] = {}

    def _apply(self, key: bytes, value: bytes | None) -> None:
        identity = identity_of_status(value) if value is not None else None
        # A tombstone does not take a device off the roster: forgetting a gate is a
        # waiver's business, on the record, not a record deleted from a topic.
        if identity is not None:
            self._known[key] = identity

    def devices(self) -> list[DeviceIdentity]:
        self._catch_up()
        return list(self._known.values())


def shared_roster(
    registry: Callable[[], list[DeviceIdentity]], reported: Callable[[], list[DeviceIdentity]]
) -> Callable[[], list[DeviceIdentity]]:
    """The roster the erasure worker reads: registry ∪ devices that reported status."""
    return lambda: merge(registry(), reported())


def _with_devices(
    devices: list[tuple[str, str]], retired: dict[str, Waived], p: ErasureProgress
) -> ErasureProgress:
    return p.with_devices(devices).with_retired(retired)


def grow_pending(
    book: ErasureBook,
    roster: list[DeviceIdentity],
    now_ms: int,
    retired: Callable[[str, str], dict[str, Waived]] = lambda tenant, site: {},
) -> list[ErasureProgress]:
    """Add to each pending erasure the devices of its site the roster shows only now;
    returns the erasures that gained one (their command must go out again at once)."""
    grown = []
    for p in book.pending():
        devices = plan.site_devices(roster, p.request.tenant, p.request.site)
        gone = retired(p.request.tenant, p.request.site)
        result = book.update(p.request.request_id, partial(_with_devices, devices, gone), now_ms)
        if result is not None and result[0].expected != result[1].expected:
            grown.append(result[1])
    return grown


__all__ = ["grow_pending", "StatusLedgerDevices", "identity_of_status", "merge", "shared_roster"]
