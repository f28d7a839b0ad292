"""Synthetic gate traffic for demos, tests and load: realistic mixes of key-card,
PIN, face-match, unknown-face and manual-open decisions, already anonymized."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.pseudonym import SiteSecret, pseudonym
from edge_agent.wire import Decision, EventKind, GateEvent, ScoreBand, new_event_id
from edge_agent.wire.topics import DeviceIdentity

#: (kind, weight) of a typical residential gate.
MIX: tuple[tuple[EventKind, int], ...] = (
    (EventKind.FACE_MATCH, 55),
    (EventKind.KEY_CARD, 25),
    (EventKind.PIN, 8),
    (EventKind.UNKNOWN_FACE, 8),
    (EventKind.MANUAL_OPEN, 4),
)


@dataclass
class SyntheticGate:
    """Makes events for one device; residents are numbered ids hashed with the site secret."""

    identity: DeviceIdentity
    site_secret: SiteSecret
    residents: int = 200
    purpose: str = "access_control"
    seed: int | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._kinds = [k for k, _ in MIX]
        self._weights = [w for _, w in MIX]
        self._pseudonyms = [
            pseudonym(self.site_secret, f"resident-{i:05d}") for i in range(self.residents)
        ]

    def maker(self) -> Callable[[int], GateEvent]:
        """A function that builds the next event once the outbox assigned its seq."""
        kind = self._rng.choices(self._kinds, self._weights)[0]
        subject = None
        band = None
        decision = Decision.GRANTED
        reason = None
        if kind in (EventKind.FACE_MATCH, EventKind.KEY_CARD, EventKind.PIN):
            subject = self._rng.choice(self._pseudonyms)
        if kind is EventKind.FACE_MATCH:
            band = self._rng.choice([ScoreBand.HIGH, ScoreBand.HIGH, ScoreBand.MEDIUM])
        elif kind is EventKind.UNKNOWN_FACE:
            band, decision, reason = ScoreBand.LOW, Decision.DENIED, "no_match"
        model = "sim" if band is not None else None
        now_ms = int(self.clock() * 1000)

        def make(seq: int) -> GateEvent:
            return GateEvent(
                schema_version=1,
                event_id=new_event_id(now_ms),
                seq=seq,
                tenant=self.identity.tenant,
                site=self.identity.site,
                gate=self.identity.gate,
                device=self.identity.device,
                kind=kind,
                decision=decision,
                purpose=self.purpose,
                occurred_at_ms=now_ms,
                subject=subject,
                score_band=band,
                model=model,
                reason=reason,
            )

        return make
