"""Consent written just before events (no sleep, worker running): the worker decides
them on a view that has read it. A grant's events are all stored; a withdrawal's
events are none stored, although ledger and raw topic have no order between them."""

from __future__ import annotations

import time

import msgspec
import pytest

from stream_processor.policy.consent import ConsentStatus
from tests.conftest import wait_for
from tests.support.processor import (
    BASE_POLICY,
    TENANT,
    Harness,
    grant_record,
    make_event,
    subject,
)

pytestmark = pytest.mark.component

ROUNDS = 5
PER_ROUND = 40


def face_outcomes(h: Harness) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, n in h.store().aggregates(TENANT, 0).items():
        if k.kind == "face_match":
            out[k.outcome] = out.get(k.outcome, 0) + n
    return out


def test_events_right_after_a_grant_or_withdrawal_are_decided_on_it(harness: Harness) -> None:
    h = harness
    h.apply_policy(BASE_POLICY)
    h.p.start("processor", "worker", name="p1")
    warm = make_event("key_card", subject_id=99, seq=0)
    h.send_events([warm])
    wait_for(lambda: h.count() == 1, 60, "the worker running and its views open")

    granted: set[str] = set()
    for r in range(ROUNDS):
        h.send_consents([grant_record(r + 1)])
        events = [make_event(subject_id=r + 1, seq=1_000 * r + i) for i in range(PER_ROUND)]
        h.send_events(events)
        granted |= {e.event_id for e in events}
    wait_for(lambda: h.count() == 1 + len(granted), 60, "every granted event stored")

    for r in range(ROUNDS):
        withdrawn = msgspec.structs.replace(
            grant_record(r + 1), status=ConsentStatus.WITHDRAWN, at_ms=int(time.time() * 1000)
        )
        h.send_consents([withdrawn])
        h.send_events(
            [make_event(subject_id=r + 1, seq=100_000 + 1_000 * r + i) for i in range(PER_ROUND)]
        )

    def all_decided() -> bool:
        return sum(face_outcomes(h).values()) >= 2 * ROUNDS * PER_ROUND

    wait_for(all_decided, 60, "every event after a withdrawal decided")
    assert face_outcomes(h) == {
        "stored": ROUNDS * PER_ROUND,
        "consent_withdrawn": ROUNDS * PER_ROUND,
    }
    wait_for(lambda: h.count() == 1, 30, "the withdrawn subjects' events deleted")
    for r in range(ROUNDS):
        assert h.store().events_of_subject(TENANT, "site-1", subject(r + 1)) == []
    assert subject(1) not in h.p.log("p1")
