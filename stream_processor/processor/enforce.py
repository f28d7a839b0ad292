"""One batch of raw events → rows to store, per-minute counts, dead letters.

The per-event decision is ``policy.decision.decide``; this module only feeds it
(policy and consent come from lookups passed in, so tests need no broker) and
tallies the outcome. No discard keeps anything about the subject: a discard
is a count under (minute, tenant, site, gate, kind, decision, reason).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edge_agent.errors import WireError
from edge_agent.wire import decode_event
from stream_processor.policy.consent import ConsentState
from stream_processor.policy.decision import Discard, DiscardReason, decide, needs_consent
from stream_processor.policy.retention import CompiledPolicy
from stream_processor.store.base import AggregateKey, StoredEvent

STORED = "stored"
MINUTE_MS = 60_000

PolicyLookup = Callable[[str], CompiledPolicy | None]
#: (tenant, site, subject, purpose) → effective consent state.
ConsentLookup = Callable[[str, str, str, str], ConsentState]


@dataclass
class EnforcedBatch:
    rows: list[StoredEvent] = field(default_factory=list)
    counts: Counter[AggregateKey] = field(default_factory=Counter)
    #: (kind, outcome) → n, for metrics (bounded labels only).
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: list[tuple[bytes, str, str]] = field(default_factory=list)  # raw, reason, detail


def enforce_batch(
    values: Iterable[bytes],
    now_ms: int,
    policy_of: PolicyLookup,
    consent_of: ConsentLookup,
) -> EnforcedBatch:
    out = EnforcedBatch()
    seen: set[str] = set()
    policies: dict[str, CompiledPolicy | None] = {}
    for raw in values:
        try:
            event = decode_event(raw)
        except WireError as exc:
            out.rejected.append((bytes(raw), exc.reason, exc.detail))
            continue
        kind = event.kind.value
        outcome: str
        if event.event_id in seen:
            outcome = DiscardReason.DUPLICATE.value
        else:
            seen.add(event.event_id)
            try:
                policy = policies[event.tenant]
            except KeyError:
                policy = policies[event.tenant] = policy_of(event.tenant)
            consent = ConsentState.NONE
            if event.subject is not None and needs_consent(event):
                consent = consent_of(event.tenant, event.site, event.subject, event.purpose)
            verdict = decide(event, policy, consent, now_ms)
            if isinstance(verdict, Discard):
                outcome = verdict.reason.value
            else:
                outcome = STORED
                out.rows.append(
                    StoredEvent.from_event(
                        event, stored_at_ms=now_ms, expires_at_ms=verdict.expires_at_ms
                    )
                )
        minute = event.occurred_at_ms - event.occurred_at_ms % MINUTE_MS
        out.counts[
            AggregateKey(
                minute, event.tenant, event.site, event.gate, kind, event.decision.value, outcome
            )
        ] += 1
        out.outcomes[(kind, outcome)] += 1
    return out
