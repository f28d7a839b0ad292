"""The bridge benchmark's live-tail consumer logs in to a stack whose Kafka requires
SASL/SCRAM: by default as the admin role of the stack its environment names, as the
benchmarks' private stacks set it up."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from stream_processor.runtime.kafka_auth import Role, confluent_auth
from tests.conftest import StackHandle
from tests.support.kafka import admin_client, producer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bridge_breakdown import LiveTail  # noqa: E402


@pytest.fixture
def appended_topic(running_stack: StackHandle) -> Any:
    from kafka.admin import NewTopic

    name = f"t.{uuid.uuid4().hex[:10]}.tail"
    admin = admin_client(running_stack)
    try:
        admin.create_topics(
            [NewTopic(name, 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})]
        )
        yield name
        admin.delete_topics([name])
    finally:
        admin.close()


def tail_until(tail: LiveTail, stack: StackHandle, topic: str, want: int) -> list[float]:
    """Publish one record every 0.2 s (the tail starts at the end: a record sent before
    it has its position would be missed) until it has seen ``want``, for 30 s at most."""
    p = producer(stack, acks="all")
    deadline = time.monotonic() + 30
    try:
        while len(tail.lags_ms) < want and time.monotonic() < deadline:
            p.send(topic, b"x").get(timeout=10)
            time.sleep(0.2)
    finally:
        p.close()
        lags = tail.stop()
    return lags


def test_the_default_login_is_the_admin_of_the_stack_in_the_environment(
    running_stack: StackHandle, appended_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in running_stack.env.items():
        if key.startswith("FACEGATE_"):
            monkeypatch.setenv(key, value)
    settings = running_stack.settings()
    tail = LiveTail(settings.kafka_bootstrap, appended_topic).start()
    lags = tail_until(tail, running_stack, appended_topic, 3)
    assert len(lags) >= 3
    assert all(-1_000 < lag < 30_000 for lag in lags)  # one machine's clock


def test_an_explicit_login_is_used_as_given(
    running_stack: StackHandle, appended_topic: str
) -> None:
    settings = running_stack.settings()
    login = confluent_auth(settings, Role.ADMIN)
    assert login or not running_stack.kafka_auth
    tail = LiveTail(settings.kafka_bootstrap, appended_topic, login=login).start()
    assert len(tail_until(tail, running_stack, appended_topic, 3)) >= 3
