"""The port every event store implements, and the row it stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from edge_agent.wire import GateEvent


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An allowed event as kept in the store: the wire fields plus bookkeeping."""

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
        return cls(
            event_id=event.event_id,
            seq=event.seq,
            tenant=event.tenant,
            site=event.site,
            gate=event.gate,
            device=event.device,
            kind=event.kind.value,
            decision=event.decision.value,
            purpose=event.purpose,
            occurred_at_ms=event.occurred_at_ms,
            subject=event.subject,
            score_band=event.score_band.value if event.score_band else None,
            model=event.model,
            consent_ref=event.consent_ref,
            reason=event.reason,
            stored_at_ms=stored_at_ms,
            expires_at_ms=expires_at_ms,
        )


COLUMNS: tuple[str, ...] = tuple(StoredEvent.__dataclass_fields__)


class EventStore(Protocol):
    def put_many(self, rows: Sequence[StoredEvent]) -> int:
        """Store rows in one transaction; an event id already stored is skipped.

        Returns how many rows were new.
        """
        ...

    def count(self) -> int: ...

    def get(self, event_id: str) -> StoredEvent | None: ...

    def close(self) -> None: ...
