"""A producer may compress (the bridge's FACEGATE_BRIDGE_COMPRESSION allows lz4, zstd,
snappy): the worker must read such batches, not crash on them."""

from __future__ import annotations

import pytest

from edge_agent.wire import encode_event
from tests.conftest import wait_for
from tests.support.kafka import confluent_config
from tests.support.processor import BASE_POLICY, Harness, make_event

pytestmark = pytest.mark.component


@pytest.mark.parametrize("codec", ["lz4", "zstd", "snappy"])
def test_worker_reads_compressed_batches(harness: Harness, codec: str) -> None:
    from confluent_kafka import Producer

    h = harness
    h.apply_policy(BASE_POLICY)
    events = [make_event("key_card", seq=i) for i in range(200)]
    p = Producer({**confluent_config(h.bootstrap), "compression.type": codec, "linger.ms": 50})
    for e in events:
        p.produce(h.topics.raw, key=f"{e.tenant}/{e.site}".encode(), value=encode_event(e))
    assert p.flush(30) == 0
    h.p.start("processor", "worker", name="p1")
    wait_for(lambda: h.count() == len(events), 60, f"{codec} batches stored")
    # Every event decoded as sent: the same ids, sequence numbers, kinds and decisions,
    # and none of them dead-lettered (a mangled batch would be refused, not stored).
    stored = [h.store().get(e.event_id) for e in events]
    assert [(s.event_id, s.seq, s.kind, s.decision) for s in stored] == [
        (e.event_id, e.seq, e.kind.value, e.decision.value) for e in events
    ]
    assert h.read_topic(h.topics.dlq, timeout_s=2) == []
