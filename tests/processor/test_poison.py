"""No record kills a worker, on the real brokers and both stores: a producer that
bypasses the bridge writes poison straight to the raw topic among valid events;
the poison is in the DLQ with reason and coordinates, every valid event is stored
once, the worker process never exits, and its offsets are committed past the poison.
A far-future event written the same way keeps its data no longer than the time the
cloud received it plus the rule (never past received + the legal ceiling)."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from edge_agent.wire import encode_event
from stream_processor.dead_letter import decode_dead_letter
from stream_processor.policy.durations import parse_duration_ms
from tests.conftest import wait_for
from tests.processor.service_rig import POISON_GATE, add_refusing_constraint, poison_values
from tests.support.processor import BASE_POLICY, Harness, make_event

pytestmark = pytest.mark.component

VALID = 3000


def test_poison_on_the_raw_topic_is_quarantined_and_the_worker_goes_on(harness: Harness) -> None:
    h = harness
    add_refusing_constraint(h.target, POISON_GATE)
    h.apply_policy(BASE_POLICY)
    worker = h.p.start("processor", "worker", name="p1")
    now = int(time.time() * 1000)
    valid = [make_event("key_card", subject_id=i % 20, seq=i) for i in range(VALID - 1)]
    # Ten years ahead, inside the contract's bounds: only the bridge's clock check
    # would refuse it, and this producer bypasses the bridge.
    future = make_event("key_card", seq=VALID, occurred_at_ms=now + 3650 * 86_400_000)
    valid.append(future)
    refused = [make_event("pin", seq=10_000 + i, gate=POISON_GATE) for i in range(3)]
    poison = [*poison_values(now), *(encode_event(e) for e in refused)]
    producer = h.producer()
    sent = []
    step = VALID // len(poison)
    for i, event in enumerate(valid):
        if i % step == 0 and i // step < len(poison):
            value = poison[i // step]
            sent.append(producer.send(h.topics.raw, key=b"acme/site-1", value=value))
        if event is not future:
            producer.send(h.topics.raw, key=b"acme/site-1", value=encode_event(event))
    future_sent = producer.send(h.topics.raw, key=b"acme/site-1", value=encode_event(future))
    producer.flush(30)
    coordinates = {(h.topics.raw, f.get().partition, f.get().offset) for f in sent}

    wait_for(lambda: h.count() >= VALID, 120, "every valid event stored")

    def letters() -> list[Any]:
        return [decode_dead_letter(v) for _, v in h.read_topic(h.topics.dlq, timeout_s=5)]

    def where(x: Any) -> tuple[str, int | None, int | None]:
        return (x.source_topic, x.source_partition, x.source_offset)

    wait_for(lambda: {where(x) for x in letters()} >= coordinates, 90, "every poison dead-lettered")
    got = letters()
    assert {where(x) for x in got} == coordinates
    assert all(x.reason and x.stage == "processor" for x in got)
    refused_at = {where(x) for x in got if x.reason == "store_refused"}
    assert len(refused_at) == len(refused)
    ids = list(h.store().iter_event_ids())
    assert len(ids) == len(set(ids)) == VALID
    assert set(ids) == {e.event_id for e in valid}
    assert worker.poll() is None, h.p.log("p1")
    assert "Traceback" not in h.p.log("p1")

    # Retention from the time the cloud received it, never past received + ceiling.
    received = future_sent.get().timestamp
    row = h.store().get(future.event_id)
    assert row is not None and row.expires_at_ms is not None
    rule = parse_duration_ms(BASE_POLICY["retention"]["key_card"]["access_control"])
    assert row.expires_at_ms == received + rule
    assert row.expires_at_ms <= received + parse_duration_ms(BASE_POLICY["legal_ceiling"])

    # Offsets were committed past the poison: a restarted worker reads none of it again.
    worker.send_signal(signal.SIGTERM)
    worker.wait(120)
    again = h.p.start("processor", "worker", name="p2")
    probe = make_event("key_card", seq=VALID + 1)
    h.send_events([probe])
    wait_for(lambda: h.store().get(probe.event_id) is not None, 120, "the restarted worker")
    time.sleep(2)
    assert len(letters()) == len(got)
    assert h.count() == VALID + 1
    assert again.poll() is None, h.p.log("p2")
