"""Gate decisions as values, and the anonymized events made from them (pure).

Face recognition, key card, PIN and manual opening all end here, in the same
:class:`Outcome` → :class:`GateEvent` path, so no way through the gate is a
second-class one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.wire import Decision, EventKind, GateEvent, ScoreBand, new_event_id
from edge_agent.wire.topics import DeviceIdentity

_REASON = re.compile(r"^[a-z][a-z_]{0,31}$")


@dataclass(frozen=True, slots=True)
class Subject:
    """A registered resident as the device knows them: pseudonym and consent reference."""

    pseudonym: str
    consent_ref: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: EventKind
    decision: Decision
    subject: str | None = None
    consent_ref: str | None = None
    score_band: ScoreBand | None = None
    model: str | None = None
    reason: str | None = None

    @property
    def opens(self) -> bool:
        return self.decision is Decision.GRANTED


def face_granted(subject: str, consent_ref: str | None, band: ScoreBand, model: str) -> Outcome:
    return Outcome(
        EventKind.FACE_MATCH, Decision.GRANTED, subject, consent_ref, band, model, None
    )


def face_unknown(band: ScoreBand, model: str) -> Outcome:
    return Outcome(EventKind.UNKNOWN_FACE, Decision.DENIED, None, None, band, model, "no_match")


def credential(kind: EventKind, subject: str | None, consent_ref: str | None) -> Outcome:
    """Key card or PIN: granted for a registered credential, denied otherwise."""
    if subject is None:
        reason = "unknown_card" if kind is EventKind.KEY_CARD else "unknown_pin"
        return Outcome(kind, Decision.DENIED, reason=reason)
    return Outcome(kind, Decision.GRANTED, subject, consent_ref)


def manual_open(reason: str = "manual") -> Outcome:
    code = reason if _REASON.fullmatch(reason) else "manual"
    return Outcome(EventKind.MANUAL_OPEN, Decision.GRANTED, reason=code)


def event_maker(
    identity: DeviceIdentity, purpose: str, outcome: Outcome, now_ms: int
) -> Callable[[int], GateEvent]:
    """Builds the event once the outbox assigned its sequence number."""

    def make(seq: int) -> GateEvent:
        return GateEvent(
            schema_version=1,
            event_id=new_event_id(now_ms),
            seq=seq,
            tenant=identity.tenant,
            site=identity.site,
            gate=identity.gate,
            device=identity.device,
            kind=outcome.kind,
            decision=outcome.decision,
            purpose=purpose,
            occurred_at_ms=now_ms,
            subject=outcome.subject,
            score_band=outcome.score_band,
            model=outcome.model,
            consent_ref=outcome.consent_ref,
            reason=outcome.reason,
        )

    return make
