"""End to end on the real brokers, both stores: the same raw records delivered again
(what a bridge restart or a Kafka fault does) leave the per-minute aggregates at one
count per event, for stored and counted-only events alike."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

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


def totals(h: Harness) -> Counter[str]:
    """Counted events per outcome, over every cell of the tenant."""
    out: Counter[str] = Counter()
    for key, n in h.store().aggregates(TENANT, 0).items():
        out[key.outcome] += n
    return out


def test_redelivered_raw_records_are_counted_once(harness: Harness) -> None:
    h = harness
    h.p.extra_env["FACEGATE_PROCESSOR_BATCH_SIZE"] = "50"
    h.apply_policy(BASE_POLICY)
    h.send_consents([grant_record(i) for i in range(10)])
    # Residents 0-9 consented (stored), 10-14 did not (counted only), unknown faces
    # (counted only), key cards (stored).
    faces = [make_event("face_match", subject_id=i % 15, seq=i) for i in range(150)]
    unknown = [make_event("unknown_face", subject_id=None, seq=200 + i) for i in range(75)]
    cards = [make_event("key_card", subject_id=i % 10, seq=300 + i) for i in range(75)]
    events: list[Any] = faces + unknown + cards
    consenting = {subject(i) for i in range(10)}
    stored = cards + [e for e in faces if e.subject in consenting]
    h.send_events(events)
    h.p.start("processor", "worker", name="p1")
    wait_for(lambda: sum(totals(h).values()) >= len(events), 120, "every event counted")
    first = totals(h)
    assert sum(first.values()) == len(events)
    assert first["stored"] == h.count() == len(stored)
    assert len(first) >= 3, first  # stored, refused for no consent, unknown faces

    # Delivered twice more, then one new event behind them on the same partition:
    # once it is counted, every copy before it has been decided.
    h.send_events(events)
    h.send_events(list(reversed(events)))
    marker = make_event("key_card", subject_id=1, seq=999)
    h.send_events([marker])
    wait_for(lambda: h.store().get(marker.event_id) is not None, 120, "the marker stored")
    first["stored"] += 1
    assert totals(h) == first
    assert h.count() == len(stored) + 1
