"""Consent written just before events (no sleep, worker running): the worker decides
them on a view that has read it. A grant's events are all stored; a withdrawal's
events are none stored, although ledger and raw topic have no order between them."""

from __future__ import annotations

import time
from typing import Any

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

#: Bound of each wait for the worker to decide n events: a phase took ~25-30 s at load ~19
#: (a 60 s bound once failed in a sweep there), ~15 s at load 9.
DECIDED_S = 180

#: Enough subjects that the consent view takes a while to apply their records: without
#: the gate, 4,916 of 6,000 events after the grants were refused (400 subjects did not
#: show it) and 798 of 800 after withdrawals were stored.
SUBJECTS = 3000
PER_SUBJECT = 2


def face_outcomes(h: Harness) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, n in h.store().aggregates(TENANT, 0).items():
        if k.kind == "face_match":
            out[k.outcome] = out.get(k.outcome, 0) + n
    return out


def progress(h: Harness) -> str:
    """What a timed-out wait shows: the outcomes so far, rows, the worker's log tail."""
    tail = "\n".join(h.p.log("p1").splitlines()[-30:])
    return f"outcomes {face_outcomes(h)}, {h.count()} rows; worker log ends:\n{tail}"


def events(first_seq: int) -> list[Any]:
    return [
        make_event(subject_id=i, seq=first_seq + PER_SUBJECT * i + j)
        for i in range(1, SUBJECTS + 1)
        for j in range(PER_SUBJECT)
    ]


def test_events_right_after_a_grant_or_withdrawal_are_decided_on_it(harness: Harness) -> None:
    h = harness
    h.apply_policy(BASE_POLICY)
    h.p.start("processor", "worker", name="p1")
    h.send_events([make_event("key_card", subject_id=None, seq=0)])
    wait_for(lambda: h.count() == 1, 120, "the worker running and its views open",
             seen=lambda: progress(h))  # fmt: skip
    n = SUBJECTS * PER_SUBJECT

    grants = [grant_record(i) for i in range(1, SUBJECTS + 1)]
    h.send_consents(grants)  # and at once, no sleep:
    h.send_events(events(1_000))
    wait_for(lambda: sum(face_outcomes(h).values()) >= n, DECIDED_S, "the events after the grants",
             seen=lambda: progress(h))  # fmt: skip
    assert face_outcomes(h) == {"stored": n}
    assert h.count() == 1 + n

    at_ms = int(time.time() * 1000) + 1
    h.send_consents(
        [msgspec.structs.replace(g, status=ConsentStatus.WITHDRAWN, at_ms=at_ms) for g in grants]
    )
    h.send_events(events(100_000))
    # Each event is counted once: n withdrawn means none of them was stored.
    wait_for(lambda: face_outcomes(h).get("consent_withdrawn", 0) >= n, DECIDED_S,
             "the events after withdrawal", seen=lambda: progress(h))  # fmt: skip
    wait_for(lambda: h.count() == 1, DECIDED_S, "the withdrawn subjects' events deleted",
             seen=lambda: progress(h))  # fmt: skip
    # The deleted rows' stored counts went with them (docs/processor.md).
    assert face_outcomes(h) == {"consent_withdrawn": n}
    assert h.store().events_of_subject(TENANT, "site-1", subject(1)) == []
    assert subject(1) not in h.p.log("p1")
