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
from stream_processor.policy.decision import CONSENT_KINDS, Discard, DiscardReason, decide
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
    counts: dict[AggregateKey, int] = field(default_factory=dict)
    rejected: list[tuple[bytes, str, str]] = field(default_factory=list)  # raw, reason, detail

    @property
    def outcomes(self) -> Counter[tuple[str, str]]:
        """(kind, outcome) → n, for metrics (bounded labels only)."""
        out: Counter[tuple[str, str]] = Counter()
        for key, n in self.counts.items():
            out[(key.kind, key.outcome)] += n
        return out


def enforce_batch(
    values: Iterable[bytes],
    now_ms: int,
    policy_of: PolicyLookup,
    consent_of: ConsentLookup,
) -> EnforcedBatch:
    """Decide every event of a batch (the processor's hot loop: kept lean)."""
    out = EnforcedBatch()
    rows = out.rows
    counts: Counter[tuple[int, str, str, str, str, str, str]] = Counter()
    seen: set[str] = set()
    policies: dict[str, CompiledPolicy | None] = {}
    duplicate = DiscardReason.DUPLICATE.value
    none = ConsentState.NONE
    for raw in values:
        try:
            event = decode_event(raw)
        except WireError as exc:
            out.rejected.append((bytes(raw), exc.reason, exc.detail))
            continue
        tenant = event.tenant
        outcome: str
        if event.event_id in seen:
            outcome = duplicate
        else:
            seen.add(event.event_id)
            try:
                policy = policies[tenant]
            except KeyError:
                policy = policies[tenant] = policy_of(tenant)
            consent = none
            if event.subject is not None and event.kind in CONSENT_KINDS:
                consent = consent_of(tenant, event.site, event.subject, event.purpose)
            verdict = decide(event, policy, consent, now_ms)
            if isinstance(verdict, Discard):
                outcome = verdict.reason._value_
            else:
                outcome = STORED
                rows.append(StoredEvent.from_event(event, now_ms, verdict.expires_at_ms))
        at = event.occurred_at_ms
        counts[
            (
                at - at % MINUTE_MS,
                tenant,
                event.site,
                event.gate,
                event.kind._value_,
                event.decision._value_,
                outcome,
            )
        ] += 1
    out.counts = {AggregateKey._make(key): n for key, n in counts.items()}
    return out
