"""One batch of raw records → rows to store, per-minute counts, refusals.

The per-event decision is ``policy.decision.decide``; this module only feeds it
(policy and consent come from lookups passed in, so tests need no broker) and
tallies the outcome. No discard keeps anything about the subject: a discard
is a count under (minute, tenant, site, gate, kind, decision, reason).

No record can stop a batch: one that cannot be decoded or decided is refused
with a reason (the caller dead-letters it) and the loop goes on. Only the
project's own errors (``FacegateError``, e.g. a look-up whose broker is down)
propagate: they say nothing about the record.

Retention runs from a time the cloud vouches for: the earlier of the event's
``occurred_at_ms`` and the record's Kafka timestamp (set by the bridge at
receipt), the latter never later than this worker's clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from edge_agent.errors import FacegateError, WireError
from edge_agent.wire import GateEvent, decode_event
from stream_processor.policy.consent import ConsentState
from stream_processor.policy.decision import CONSENT_KINDS, Discard, DiscardReason, decide
from stream_processor.policy.retention import CompiledPolicy
from stream_processor.store.base import AggregateKey, CountedEvent, StoredEvent

STORED = "stored"
MINUTE_MS = 60_000
#: Refusal reasons of records the decoder or the decision raised on unexpectedly.
UNDECODABLE = "undecodable"
UNDECIDABLE = "undecidable"

PolicyLookup = Callable[[str], CompiledPolicy | None]
#: (tenant, site, subject, purpose) → effective consent state.
ConsentLookup = Callable[[str, str, str, str], ConsentState]
#: Payload bytes → a validated event (the wire contract's strict decoder).
Decoder = Callable[[bytes], GateEvent]


class RawRecord(Protocol):
    """A record of the raw topic (aiokafka's ``ConsumerRecord`` is one)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...


@dataclass
class EnforcedBatch:
    rows: list[StoredEvent] = field(default_factory=list)
    counts: dict[AggregateKey, int] = field(default_factory=dict)
    #: The decided events not stored, with their cell: the store counts each id once.
    counted: list[CountedEvent] = field(default_factory=list)
    #: Copies of an event already in this batch, per kind: not counted in ``counts``.
    duplicates: Counter[str] = field(default_factory=Counter)
    #: (index of the record in the batch, reason, detail)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def outcomes(self) -> Counter[tuple[str, str]]:
        """(kind, outcome) → n, for metrics (bounded labels only)."""
        out: Counter[tuple[str, str]] = Counter()
        for key, n in self.counts.items():
            out[(key.kind, key.outcome)] += n
        for kind, n in self.duplicates.items():
            out[(kind, DiscardReason.DUPLICATE.value)] += n
        return out


def enforce_batch(
    records: Sequence[RawRecord],
    now_ms: int,
    policy_of: PolicyLookup,
    consent_of: ConsentLookup,
    decode: Decoder = decode_event,
) -> EnforcedBatch:
    """Decide every record of a batch (the processor's hot loop: kept lean).
    ``decode`` raises ``WireError`` for a payload the contract refuses."""
    out = EnforcedBatch()
    rows = out.rows
    rejected = out.rejected
    counted = out.counted
    counts: Counter[tuple[int, str, str, str, str, str, str]] = Counter()
    seen: set[str] = set()
    policies: dict[str, CompiledPolicy | None] = {}
    none = ConsentState.NONE
    for index, record in enumerate(records):
        try:
            event = decode(record.value or b"")
        except WireError as exc:
            rejected.append((index, exc.reason, exc.detail))
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. RecursionError: refused, never fatal
            rejected.append((index, UNDECODABLE, type(exc).__name__))
            continue
        try:
            tenant = event.tenant
            outcome: str
            row = None
            if event.event_id in seen:
                out.duplicates[event.kind._value_] += 1
                continue
            seen.add(event.event_id)
            try:
                policy = policies[tenant]
            except KeyError:
                policy = policies[tenant] = policy_of(tenant)
            consent = none
            if event.subject is not None and event.kind in CONSENT_KINDS:
                consent = consent_of(tenant, event.site, event.subject, event.purpose)
            received = record.timestamp
            if not 0 < received <= now_ms:
                received = now_ms
            verdict = decide(event, policy, consent, now_ms, received)
            if isinstance(verdict, Discard):
                outcome = verdict.reason._value_
            else:
                outcome = STORED
                row = StoredEvent.from_event(event, now_ms, verdict.expires_at_ms)
            at = event.occurred_at_ms
            key = (
                at - at % MINUTE_MS,
                tenant,
                event.site,
                event.gate,
                event.kind._value_,
                event.decision._value_,
                outcome,
            )
        except FacegateError:
            raise
        except Exception as exc:  # noqa: BLE001 - the record is refused, the batch goes on
            rejected.append((index, UNDECIDABLE, type(exc).__name__))
            continue
        if row is not None:
            rows.append(row)
        else:
            counted.append((event.event_id, key))
        counts[key] += 1
    out.counts = {AggregateKey._make(key): n for key, n in counts.items()}
    return out
