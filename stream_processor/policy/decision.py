"""The per-event decision: store until T, or discard because R.

Order of checks (the first that fails decides): a policy exists for the
tenant → the purpose is declared → it is allowed at this camera → unknown
faces are counted only → a face match needs a granted consent for (subject,
purpose) → a retention rule > 0 exists → the event is not already past it.

Retention runs from the earlier of the event's own time and ``received_ms``,
the time the cloud received it: a gate whose clock runs ahead (or lies) cannot
extend how long its events are kept. The deadline is never later than
``received_ms`` plus the tenant's legal ceiling.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from edge_agent.wire.events import EventKind, GateEvent
from stream_processor.policy.consent import ConsentState
from stream_processor.policy.retention import CompiledPolicy


class DiscardReason(enum.StrEnum):
    """Why an event was not stored. A bounded set: safe as a metrics label."""

    DUPLICATE = "duplicate"
    NO_POLICY = "no_policy"
    PURPOSE_NOT_DECLARED = "purpose_not_declared"
    PURPOSE_NOT_ALLOWED_AT_CAMERA = "purpose_not_allowed_at_camera"
    UNKNOWN_FACE_COUNTED_ONLY = "unknown_face_counted_only"
    NO_CONSENT = "no_consent"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NO_RETENTION_RULE = "no_retention_rule"
    RETENTION_ZERO = "retention_zero"
    EXPIRED_ON_ARRIVAL = "expired_on_arrival"


@dataclass(frozen=True, slots=True)
class Store:
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class Discard:
    reason: DiscardReason


Verdict = Store | Discard

#: Kinds whose storage needs the subject's consent (biometric: face recognition).
CONSENT_KINDS = frozenset({EventKind.FACE_MATCH})

_DISCARDS = {r: Discard(r) for r in DiscardReason}


_UNKNOWN_FACE = EventKind.UNKNOWN_FACE
_GRANTED = ConsentState.GRANTED
_WITHDRAWN = ConsentState.WITHDRAWN
_NO_POLICY = _DISCARDS[DiscardReason.NO_POLICY]
_NOT_DECLARED = _DISCARDS[DiscardReason.PURPOSE_NOT_DECLARED]
_NOT_AT_CAMERA = _DISCARDS[DiscardReason.PURPOSE_NOT_ALLOWED_AT_CAMERA]
_COUNTED_ONLY = _DISCARDS[DiscardReason.UNKNOWN_FACE_COUNTED_ONLY]
_CONSENT_WITHDRAWN = _DISCARDS[DiscardReason.CONSENT_WITHDRAWN]
_NO_CONSENT = _DISCARDS[DiscardReason.NO_CONSENT]
_NO_RULE = _DISCARDS[DiscardReason.NO_RETENTION_RULE]
_ZERO = _DISCARDS[DiscardReason.RETENTION_ZERO]
_EXPIRED = _DISCARDS[DiscardReason.EXPIRED_ON_ARRIVAL]


def decide(
    event: GateEvent,
    policy: CompiledPolicy | None,
    consent: ConsentState,
    now_ms: int,
    received_ms: int | None = None,
) -> Verdict:
    """Decide one event. ``consent`` is the effective state for (subject, purpose);
    pass ``ConsentState.NONE`` for events without a subject. ``received_ms``
    (default ``now_ms``) is when the cloud received the event.

    Called for every event: enum members are module constants here (a class
    attribute lookup on an enum costs more than the check itself).
    """
    if policy is None:
        return _NO_POLICY
    purpose = event.purpose
    if purpose not in policy.document.purposes:
        return _NOT_DECLARED
    site = event.site
    if purpose not in policy.allowed_purposes(site, event.gate, event.device):
        return _NOT_AT_CAMERA
    kind = event.kind
    if kind is _UNKNOWN_FACE:
        return _COUNTED_ONLY
    if kind in CONSENT_KINDS:
        if consent is _WITHDRAWN:
            return _CONSENT_WITHDRAWN
        if consent is not _GRANTED:
            return _NO_CONSENT
    rule = policy.retention_ms(site, kind._value_, purpose)
    if rule is None:
        return _NO_RULE
    if rule == 0:
        return _ZERO
    received = now_ms if received_ms is None else received_ms
    occurred = event.occurred_at_ms
    expires = (occurred if occurred < received else received) + rule
    ceiling = received + policy.ceiling_ms
    if expires > ceiling:
        expires = ceiling
    if expires <= now_ms:
        return _EXPIRED
    return Store(expires)
