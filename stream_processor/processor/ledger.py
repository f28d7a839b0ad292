"""Reading the consent and policy ledgers: what a record means for the worker.

Pure functions over record bytes; the Faust agents in ``app`` apply the result
(table update, store deletion, edge command).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from edge_agent.errors import WireError
from edge_agent.wire.commands import CommandType, EdgeCommand
from stream_processor.policy.consent import (
    ALL_PURPOSES,
    ConsentRecord,
    ConsentState,
    ConsentStatus,
    consent_key,
    decode_consent,
    effective_consent,
)
from stream_processor.policy.keys import is_heartbeat
from stream_processor.policy.retention import compile_version, decode_version

log = logging.getLogger(__name__)


def deterministic_uuid7(ms: int, seed: bytes) -> str:
    """A UUIDv7 whose random bits come from ``seed``: a replayed record yields the
    same command id, so the edge can drop the repeat. Anyone who knows ``seed`` can
    recompute it: seeds naming a subject take ``keyed_uuid7``."""
    return _uuid7(ms, hashlib.sha256(seed).digest())


def keyed_uuid7(ms: int, key: bytes, message: bytes) -> str:
    """A UUIDv7 whose random bits are an HMAC-SHA256 of ``message``: deterministic for
    whoever holds ``key`` (retries, replays and every host agree), unguessable for
    anyone else even if they know ``message`` and ``ms``."""
    return _uuid7(ms, hmac.new(key, message, hashlib.sha256).digest())


def _uuid7(ms: int, random: bytes) -> str:
    digest = int.from_bytes(random[:10], "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((digest >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= digest & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(frozen=True)
class LedgerRefusal:
    reason: str
    detail: str


def read_consent(key: bytes | None, value: bytes | None) -> ConsentRecord | LedgerRefusal | None:
    """``None`` for a tombstone or heartbeat; the record; or why it is refused.
    Refusal details never quote the record (it holds a pseudonym)."""
    if key is None:
        return LedgerRefusal("missing_key", "consent record without a key")
    if is_heartbeat(key) or value is None:
        return None
    try:
        record = decode_consent(value)
    except WireError as exc:
        return LedgerRefusal(exc.reason, "consent record does not match the schema")
    if record.key != key:
        return LedgerRefusal("key_mismatch", "consent record key differs from its fields")
    return record


def withdrawal_command(record: ConsentRecord, key: bytes) -> EdgeCommand:
    """The edge command a withdrawal sends; ``key``: the deployment's command-id key
    (``runtime.command_key``), without which its id does not lead back to the record."""
    purpose = None if record.purpose == ALL_PURPOSES else record.purpose
    return EdgeCommand(
        schema_version=1,
        command_id=withdrawal_id(record.key, record.at_ms, key),
        type=CommandType.WITHDRAW_CONSENT,
        tenant=record.tenant,
        site=record.site,
        subject=record.subject,
        issued_at_ms=record.at_ms,
        purpose=purpose,
    )


def withdrawal_id(consent_key: bytes, at_ms: int, key: bytes) -> str:
    return keyed_uuid7(at_ms, key, b"withdraw/" + consent_key + b"@" + str(at_ms).encode())


def legacy_withdrawal_id(consent_key: bytes, at_ms: int) -> str:
    """The unkeyed id earlier versions gave a withdrawal (pseudonym and time alone):
    only to recognise their commands still on disk or in flight."""
    return deterministic_uuid7(at_ms, consent_key + str(at_ms).encode())


def site_key(tenant: str, site: str) -> bytes:
    return f"{tenant}/{site}".encode()


def consent_state(
    get: Callable[[bytes], bytes | None], tenant: str, site: str, subject: str, purpose: str
) -> ConsentState:
    """Effective consent from a table lookup ``get(key) -> bytes | None``."""
    specific = get(consent_key(tenant, site, subject, purpose))
    wildcard = get(consent_key(tenant, site, subject, ALL_PURPOSES))
    return effective_consent(
        _decoded(specific) if specific else None, _decoded(wildcard) if wildcard else None
    )


@lru_cache(maxsize=65_536)
def _decoded(data: bytes) -> ConsentRecord | None:
    """Decoded once per distinct record: a resident passes the gate many times."""
    try:
        return decode_consent(data)
    except WireError:
        return None


def read_policy(key: bytes | None, value: bytes | None) -> bytes | LedgerRefusal | None:
    """Validated policy bytes to keep in the table; ``None`` for tombstones/heartbeats."""
    if key is None:
        return LedgerRefusal("missing_key", "policy record without a key")
    if is_heartbeat(key) or value is None:
        return None
    try:
        version = decode_version(value)
        compile_version(value)
    except Exception as exc:  # noqa: BLE001 - any invalid document is refused, as data
        return LedgerRefusal("invalid_policy", str(exc)[:300])
    allowed = (version.tenant, f"{version.tenant}@{version.version:08d}")
    if key.decode(errors="replace") not in allowed:
        return LedgerRefusal("key_mismatch", "policy key differs from its tenant/version")
    return value


__all__ = [
    "ConsentStatus",
    "LedgerRefusal",
    "consent_state",
    "deterministic_uuid7",
    "keyed_uuid7",
    "legacy_withdrawal_id",
    "read_consent",
    "read_policy",
    "site_key",
    "withdrawal_command",
    "withdrawal_id",
]


class LedgerView:
    """Lookups in a ledger table that are right from the first event on.

    A worker's table fills from its changelog and from the ledger agent, which
    share Faust's one consumer with the raw stream: waiting on them from the raw
    agent would stall that consumer. So at start-up the raw agent reads the
    ledger directly (a snapshot complete up to ``ends``) and answers from the
    snapshot until the table has read past those offsets, then from the table
    only. Everything in a table that has not caught up is older than the
    snapshot, so the snapshot is never the staler of the two.
    """

    def __init__(
        self,
        table_get: Callable[[bytes], bytes | None],
        snapshot: dict[bytes, bytes],
        ends: dict[int, int],
        position_prefix: bytes,
        refused: Callable[[bytes, bytes], bool] | None = None,
    ) -> None:
        """``refused(key, value)``: whether the ledger agent refuses a record. A snapshot
        holds each key's latest record even when the agent refused it, while the table
        keeps the last valid one, which compaction may have removed from the topic: the
        snapshot cannot give the table's answer, so it is not used at all, and look-ups
        (and ``snapshot_ends``, which the batch gate waits on) are the table's."""
        self._table_get = table_get
        self._snapshot: dict[bytes, bytes] | None = snapshot
        if refused is not None and (n := sum(refused(k, v) for k, v in snapshot.items())):
            log.warning("ledger snapshot ends with %d refused record(s): answering from the"
                        " table once it has read the ledger", n)  # fmt: skip
            self._snapshot = None
        self._ends = ends
        self._prefix = position_prefix
        self._next_check = 0.0

    def caught_up(self, *, now: bool = False) -> bool:
        """``now``: look at the table's positions even if looked at less than 0.2 s ago."""
        if self._snapshot is None:
            return True
        at = time.monotonic()
        if not now and at < self._next_check:  # checked per event it cost ~15 µs each
            return False
        self._next_check = at + 0.2
        for partition, end in self._ends.items():
            pos = self._table_get(self._prefix + str(partition).encode())
            if end > 0 and int(pos or b"-1") < end - 1:
                return False
        self._snapshot = None  # from now on the table is at least as new
        return True

    def snapshot_ends(self) -> dict[int, int] | None:
        """The snapshot's end offsets while lookups answer from it, else ``None``."""
        return None if self.caught_up(now=True) else self._ends

    def get(self, key: bytes) -> bytes | None:
        if self._snapshot is not None and not self.caught_up():
            return self._snapshot.get(key)
        return self._table_get(key)


def consent_refused(key: bytes, value: bytes) -> bool:
    """Whether the consent agent refuses this record (``LedgerView``'s ``refused``)."""
    return isinstance(read_consent(key, value), LedgerRefusal)


def policy_refused(key: bytes, value: bytes) -> bool:
    """Whether the policy agent refuses this record (``LedgerView``'s ``refused``)."""
    return isinstance(read_policy(key, value), LedgerRefusal)


#: ``LedgerView``'s ``refused`` per ledger.
REFUSED = {"consent": consent_refused, "policies": policy_refused}
