"""Sample wire records for the wire tests."""

from __future__ import annotations

import time

from edge_agent.wire import Decision, EventKind, GateEvent, ScoreBand, new_event_id


def make(**over: object) -> GateEvent:
    fields: dict[str, object] = dict(
        schema_version=1,
        event_id=new_event_id(),
        seq=7,
        tenant="acme",
        site="tj-chengji",
        gate="north",
        device="cam-1",
        kind=EventKind.FACE_MATCH,
        decision=Decision.GRANTED,
        purpose="access_control",
        occurred_at_ms=int(time.time() * 1000),
        subject="ps1_" + "ab" * 16,
        score_band=ScoreBand.HIGH,
        model="blazeface+mfn",
        consent_ref="cr1_" + "cd" * 16,
    )
    fields.update(over)
    return GateEvent(**fields)  # type: ignore[arg-type]
