"""Records the tests write straight to Kafka (around the bridge) and read back: a
producer that waits for each record, the dead letters of a topic, a device status."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import strategies as st

from stream_processor.dead_letter import DeadLetter, decode_dead_letter


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    """Each record acknowledged (acks=all) before the next is sent: offsets follow the list."""
    from tests.support.kafka import producer as make_producer

    producer = make_producer(bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


def dead_letters(bootstrap: str, topic: str, idle_s: float = 1.5) -> list[DeadLetter]:
    """Every dead letter on ``topic`` so far (reading stops after ``idle_s`` of quiet)."""
    from tests.support.kafka import consumer as make_consumer

    consumer = make_consumer(
        bootstrap, topic, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=int(idle_s * 1000),
    )  # fmt: skip
    try:
        return [decode_dead_letter(m.value) for m in consumer]
    finally:
        consumer.close()


def status_payload(**over: Any) -> bytes:
    """A valid device status of acme/site-1/gate-1/cam-1, with ``over`` merged in."""
    doc: dict[str, Any] = dict(
        schema_version=1, tenant="acme", site="site-1", gate="gate-1", device="cam-1",
        sent_at_ms=1_790_000_000_000, uptime_s=5, outbox_depth=0, oldest_queued_age_s=0.0,
        gallery_templates=3, models=["sim"], frames_per_s=0.0, decision_latency_ms=0.0,
        software_version="0.1.0",
    )  # fmt: skip
    doc.update(over)
    return json.dumps(doc).encode()


def private_topics(bootstrap: str, *fields: str, create: bool = True) -> Any:
    """``Topics`` with the named fields set to ``t.<tag>.<field>`` (a test's own topics
    on the shared broker), created now unless ``create`` is false."""
    from stream_processor.runtime.settings import Topics

    tag = uuid.uuid4().hex[:10]
    topics = Topics(**{f: f"t.{tag}.{f}" for f in fields})
    if create:
        create_topics(bootstrap, topics, *fields)
    return topics


def create_topics(bootstrap: str, topics: Any, *fields: str) -> None:
    """Create the named fields' topics, as the admin role of the stack at ``bootstrap``."""
    from tests.support.kafka import create_topics as create

    create(bootstrap, topics, {getattr(topics, f) for f in fields})


#: Arbitrary JSON values (NaN and Infinity included), for readers that must refuse
#: with a reason and never raise.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=16,
)
