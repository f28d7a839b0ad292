"""The web's device status view survives its topic (real Kafka): hostile statuses written
around the bridge are dead-lettered with coordinates and counted, never in the table; the
valid status after them is; a broker that is not there at first is reconnected."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from edge_agent.wire.decoding import REASONS
from stream_processor.quarantine import ConsumerMetrics, Coordinates, Quarantine, Refusal
from stream_processor.runtime.kafka_auth import Role
from stream_processor.tail import TailRecord, kafka_consumer
from stream_processor.web.devices import DeviceStatusFollower, DeviceTable
from tests.conftest import StackHandle, wait_for
from tests.support.kafka import grant_pipeline, login_kwargs, revoke_private
from tests.support.records import (
    create_topics,
    json_values,
    private_topics,
    produce,
    status_payload,
)
from tests.support.records import dead_letters as read_dead_letters

HOSTILE: list[tuple[bytes, str]] = [
    (b"\xff\xfe garbage", "invalid_utf8"),
    (b'{"schema_version": 1', "bad_json"),
    (status_payload(gallery_templates=10**400), "out_of_range"),
    (status_payload(outbox_depth="many"), "invalid_field"),
    (status_payload(embedding=[0.1] * 64), "unknown_field"),
    (status_payload()[:-1] + b', "tenant": "other"}', "duplicate_key"),
    (status_payload(frames_per_s=float("nan")), "non_finite"),
]


class Sink:
    """A sink that is down for its first write, then the real one."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.failed = inner, False

    def send(self, key: bytes, value: bytes) -> None:
        if not self.failed:
            from stream_processor.errors import BrokerError

            self.failed = True
            raise BrokerError("Kafka is down")
        self.inner.send(key, value)


def _as_web(stack: StackHandle, topics: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The view and its dead-letter sink are the web app's: the web role's login, with
    the plan granted on the test's topics (revoked after)."""
    grants = grant_pipeline(stack, topics, "facegate-processor", "facegate-processor-erasure")
    request.addfinalizer(lambda: revoke_private(stack, grants))
    return login_kwargs(stack, Role.WEB)


@pytest.mark.component
def test_hostile_statuses_are_quarantined_and_the_view_goes_on(
    running_stack: StackHandle, request: pytest.FixtureRequest
) -> None:
    from kafka.errors import NoBrokersAvailable

    from stream_processor.quarantine import KafkaDeadLetters

    bootstrap = running_stack.settings().kafka_bootstrap
    topics = private_topics(bootstrap, "device_status", "dlq")
    auth = _as_web(running_stack, topics, request)
    key = b"acme.site-1.gate-1.cam-1"
    valid = status_payload(gallery_templates=200)
    produce(bootstrap, topics.device_status, [(key, v) for v, _ in HOSTILE] + [(key, valid)])

    registry = CollectorRegistry()
    dead_letters = KafkaDeadLetters(bootstrap, topics.dlq, auth=auth)
    table = DeviceTable()
    follower = DeviceStatusFollower(
        bootstrap, topics.device_status, table,
        Quarantine("web_device_status", ConsumerMetrics(registry)), Sink(dead_letters), auth,
    )  # fmt: skip
    real = kafka_consumer(bootstrap, "test-status", auth)
    calls: list[int] = []

    def connect() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise NoBrokersAvailable()
        return real()

    follower._tail._connect = connect  # the first connection finds no broker
    follower.start()
    try:
        wait_for(lambda: bool(table.of_tenant("acme")), 60, "the valid status in the table")
        letters = read_dead_letters(bootstrap, topics.dlq)
        assert follower._tail._thread is not None and follower._tail._thread.is_alive()
    finally:
        follower.stop()
        dead_letters.close()
    (row,) = table.of_tenant("acme")
    assert row.status.gallery_templates == 200 and len(calls) == 2
    got = [(d.source_topic, d.source_offset, d.reason, d.stage) for d in letters]
    assert got == [
        (topics.device_status, i, reason, "web_device_status")
        for i, (_, reason) in enumerate(HOSTILE)
    ]
    for reason in {r for _, r in HOSTILE}:
        counted = registry.get_sample_value(
            "facegate_consumer_quarantined_total",
            {"consumer": "web_device_status", "reason": reason},
        )
        assert counted == 1, reason
    retries = registry.get_sample_value(
        "facegate_consumer_outage_retries_total", {"consumer": "web_device_status"}
    )
    assert retries == 2  # the missing broker once, the failed dead letter once


@settings(max_examples=300, deadline=None)
@given(
    value=json_values,
    merged=st.booleans(),
)
def test_the_status_reader_refuses_arbitrary_json_with_a_reason(value: Any, merged: bool) -> None:
    if merged and isinstance(value, dict):
        value = {**json.loads(status_payload()), **value}
    table = DeviceTable()
    follower = DeviceStatusFollower(
        "unused:1", "s", table, Quarantine("t", ConsumerMetrics(CollectorRegistry())), Sink(None)
    )
    record = TailRecord(Coordinates("s", 0, 0), b"k", json.dumps(value).encode(), 1)
    out = follower.take(record)
    if isinstance(out, Refusal):
        assert out.reason in REASONS
    else:
        assert out is None and len(table.of_tenant(str(value.get("tenant")))) == 1


@pytest.mark.component
def test_a_topic_created_after_the_view_started_is_followed(
    running_stack: StackHandle, request: pytest.FixtureRequest
) -> None:
    from stream_processor.quarantine import KafkaDeadLetters

    bootstrap = running_stack.settings().kafka_bootstrap
    topics = private_topics(bootstrap, "device_status", "dlq", create=False)
    auth = _as_web(running_stack, topics, request)
    table = DeviceTable()
    dead = KafkaDeadLetters(bootstrap, topics.dlq, auth=auth)
    quarantine = Quarantine("web_device_status", ConsumerMetrics(CollectorRegistry()))
    follower = DeviceStatusFollower(bootstrap, topics.device_status, table, quarantine, dead,
                                    auth)  # fmt: skip
    follower.start()
    try:
        time.sleep(1.5)  # the view asked for the topic before it existed
        create_topics(bootstrap, topics, "device_status")
        produce(bootstrap, topics.device_status, [(b"acme.site-1.gate-1.cam-1", status_payload())])
        wait_for(lambda: bool(table.of_tenant("acme")), 60, "the status in the table")
    finally:
        follower.stop()
        dead.close()
