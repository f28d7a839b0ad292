"""The port every event store implements, and the row it stores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from edge_agent.wire import GateEvent
from edge_agent.wire.bounds import MAX_QUEUE_AGE_S
from stream_processor.errors import StoreError

if TYPE_CHECKING:
    from stream_processor.store.erase import Erased


class StoreDataError(StoreError):
    """The store refused what it was given (a value out of range, a constraint, an
    encoding): retrying the same rows fails the same way; another batch may succeed."""


class StoreUnavailable(StoreError):
    """The store cannot write now (server down, disk full, locked): the same rows may
    succeed later."""

    retriable = True


class StoredEvent(NamedTuple):
    """An allowed event as kept in the store: the wire fields plus bookkeeping.

    A tuple in column order, so a batch goes to the database as it is.
    """

    event_id: str
    seq: int
    tenant: str
    site: str
    gate: str
    device: str
    kind: str
    decision: str
    purpose: str
    occurred_at_ms: int
    subject: str | None
    score_band: str | None
    model: str | None
    consent_ref: str | None
    reason: str | None
    stored_at_ms: int
    expires_at_ms: int | None

    @classmethod
    def from_event(
        cls, event: GateEvent, stored_at_ms: int, expires_at_ms: int | None
    ) -> StoredEvent:
        band = event.score_band
        # tuple.__new__ with the values in field order: the generated keyword
        # constructor costs a few microseconds per row on the processor's hot path.
        # ``_value_`` is the enum's plain value (``.value`` is a slower descriptor).
        return tuple.__new__(
            cls,
            (
                event.event_id,
                event.seq,
                event.tenant,
                event.site,
                event.gate,
                event.device,
                event.kind._value_,
                event.decision._value_,
                event.purpose,
                event.occurred_at_ms,
                event.subject,
                None if band is None else band._value_,
                event.model,
                event.consent_ref,
                event.reason,
                stored_at_ms,
                expires_at_ms,
            ),
        )


COLUMNS: tuple[str, ...] = StoredEvent._fields


class AggregateKey(NamedTuple):
    """One cell of the per-minute counts: ``outcome`` is ``stored`` or a discard reason."""

    minute_ms: int
    tenant: str
    site: str
    gate: str
    kind: str
    decision: str
    outcome: str


#: The outcome of a stored event's aggregate cell.
STORED_OUTCOME = "stored"

#: An event that was counted but not stored: (event id, the cell it counts in). The
#: store keeps the id alone (a random UUIDv7: no subject, no time of passage beyond
#: the cell it counted in) for ``COUNTED_HORIZON_MS`` so a re-delivered copy is not
#: counted again.
CountedEvent = tuple[str, tuple[int, str, str, str, str, str, str]]

#: How long a counted-only event id is remembered: a device re-sends an event for at
#: most ``MAX_QUEUE_AGE_S`` (the bridge refuses it after), so no copy arrives later.
COUNTED_HORIZON_MS = MAX_QUEUE_AGE_S * 1000


def row_cell(row: Sequence[Any], minute_ms: int = 60_000) -> AggregateKey:
    """The aggregate cell a stored row was counted in. By position: the store writer
    process receives rows as plain lists, in ``StoredEvent`` order."""
    at = row[9]
    return AggregateKey(at - at % minute_ms, row[2], row[3], row[4], row[6], row[7], STORED_OUTCOME)


class RetentionCutoff(NamedTuple):
    """Rows of (tenant, site, kind, purpose) that occurred before ``cutoff_ms`` are past
    their rule."""

    tenant: str
    site: str
    kind: str
    purpose: str
    cutoff_ms: int


class GroupAge(NamedTuple):
    """The oldest stored row of a (tenant, site, kind, purpose) group."""

    tenant: str
    site: str
    kind: str
    purpose: str
    rows: int
    oldest_occurred_ms: int
    earliest_expiry_ms: int | None


class GroupOldest(NamedTuple):
    """When the oldest stored row of a (tenant, site, kind, purpose) group occurred."""

    tenant: str
    site: str
    kind: str
    purpose: str
    oldest_occurred_ms: int


#: Per (tenant, site, kind): how many rows.
SiteKindCounts = dict[tuple[str, str, str], int]


class EventStore(Protocol):
    def put_many(self, rows: Sequence[StoredEvent]) -> int:
        """Store rows in one transaction; an event id already stored is skipped.

        Returns how many rows were new.
        """
        ...

    def count(self) -> int: ...

    def get(self, event_id: str) -> StoredEvent | None: ...

    def close(self) -> None: ...

    # -- the policy engine's writes; all idempotent ---------------------------
    def write_batch(
        self,
        rows: Sequence[StoredEvent],
        counts: Mapping[AggregateKey, int],
        counted: Sequence[CountedEvent] = (),
    ) -> int:
        """``put_many`` plus adding ``counts`` to the per-minute aggregates, in one
        transaction. Returns how many rows were new.

        ``counts`` covers ``rows`` (outcome ``stored``) and ``counted`` (the decided
        events not stored); a row already stored or a counted id already remembered
        is taken out of ``counts`` first, so each event id is counted once however
        often it is written. Negative counts (an erasure's take-back) apply as given.
        """
        ...

    def delete_counted(self, now_ms: int) -> int:
        """Forget counted-only event ids past their horizon; returns how many."""
        ...

    def delete_subject(
        self,
        tenant: str,
        site: str,
        subject: str,
        purpose: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> int:
        """Delete a subject's stored events (all purposes/kinds when None) and take their
        counts out of the aggregates, in one transaction; returns how many."""
        ...

    def erase_subject(
        self,
        request_id: str,
        tenant: str,
        site: str,
        subject: str,
        purposes: Sequence[str] | None = None,
    ) -> Erased:
        """One transaction: delete the subject's rows (of ``purposes``; all when None),
        take their counts out of the aggregates, add the rows to ``request_id``'s tally."""
        ...

    def erased_rows(self, request_id: str) -> int:
        """The rows erasures under ``request_id`` removed so far."""
        ...

    def forget_erasure(self, request_id: str) -> None:
        """Drop ``request_id``'s tally (after its receipt is durable; idempotent)."""
        ...

    def release_deleted(self) -> None:
        """Make deleted rows unrecoverable from the store's files as far as the engine
        can (SQLite: checkpoint and truncate the WAL; see docs/erasure.md)."""
        ...

    def events_of_subject(self, tenant: str, site: str, subject: str) -> list[StoredEvent]:
        """Every stored event of one subject at one site, oldest first (subject access)."""
        ...

    def retention_groups(self) -> list[tuple[str, str, str, str]]:
        """Distinct (tenant, site, kind, purpose) among stored rows."""
        ...

    def count_expired(self, cutoffs: Sequence[RetentionCutoff], now_ms: int) -> SiteKindCounts:
        """What ``delete_expired`` would delete now, without deleting."""
        ...

    def delete_expired(
        self, cutoffs: Sequence[RetentionCutoff], now_ms: int, batch_size: int = 5000
    ) -> SiteKindCounts:
        """Delete rows past ``expires_at_ms`` or past their group's cutoff, in batches
        of ``batch_size`` rows per transaction."""
        ...

    def group_ages(self) -> list[GroupAge]: ...

    def group_oldest(self) -> list[GroupOldest]:
        """The oldest row per group without counting rows: an index seek per group."""
        ...

    def aggregates(
        self, tenant: str, since_ms: int, until_ms: int | None = None
    ) -> dict[AggregateKey, int]:
        """Per-minute counts of one tenant in [since, until)."""
        ...


def close_quietly(store: EventStore | None) -> None:
    """Close a store that may have failed; a broken connection may not close cleanly,
    and the caller is already on its way to a new one."""
    if store is not None:
        try:
            store.close()
        except Exception:  # noqa: BLE001, S110 - see the docstring
            pass
