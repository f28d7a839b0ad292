"""The erasure worker's heartbeat on the consent and policies ledgers (pure parts): what
it writes, that every ledger reader skips it, and that a failing broker never ends the
timer. The broker side (it is allowed under the ACL plan, and compaction keeps the
bound) is tests/processor/test_compaction.py."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from stream_processor.erasure.ledger_heartbeat import (
    OUTAGE_LABEL,
    LedgerHeartbeat,
    heartbeat_interval_s,
    writer_key,
)
from stream_processor.policy.keys import is_heartbeat, is_internal
from stream_processor.processor.ledger import read_consent, read_policy
from stream_processor.quarantine import ConsumerMetrics
from stream_processor.runtime.kafka_acls import acl_plan, permits
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics

pytestmark = pytest.mark.unit
T = Topics(consent="c.consent", policies="c.policies")


class Recording:
    def __init__(self, fail_on: str | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail_on = fail_on

    async def __call__(self, topic: str, key: bytes, value: bytes) -> object:
        if topic == self.fail_on:
            raise ConnectionError("broker down")
        self.sent.append((topic, key, value))
        return None


def _beat(send: Recording, registry: CollectorRegistry) -> bool:
    heart = LedgerHeartbeat(send, T, "app-erasure", ConsumerMetrics(registry), clock=lambda: 12.5)
    return asyncio.run(heart.beat())


def test_one_beat_writes_the_time_to_both_ledgers_under_the_workers_key() -> None:
    send = Recording()
    assert _beat(send, CollectorRegistry())
    key = writer_key("app-erasure")
    assert send.sent == [(T.consent, key, b"12500"), (T.policies, key, b"12500")]
    assert is_heartbeat(key) and is_internal(key)
    # Readers of both ledgers take it as no record (neither a consent nor a policy).
    assert read_consent(key, b"12500") is None
    assert read_policy(key, b"12500") is None


def test_a_failing_broker_is_counted_and_never_raised() -> None:
    registry = CollectorRegistry()
    send = Recording(fail_on=T.policies)
    assert not _beat(send, registry)
    assert (
        registry.get_sample_value(
            "facegate_consumer_outage_retries_total", {"consumer": OUTAGE_LABEL}
        )
        == 1.0
    )
    assert [t for t, _, _ in send.sent] == [T.consent]


def test_beats_twice_per_segment_and_never_faster_than_once_a_second() -> None:
    assert heartbeat_interval_s(T.model_copy(update={"ledger_segment_ms": 60_000})) == 30.0
    assert heartbeat_interval_s(T.model_copy(update={"ledger_segment_ms": 500})) == 1.0


def test_the_plan_lets_the_erasure_worker_beat_both_ledgers_and_never_the_processor() -> None:
    plan = acl_plan(T, "proc", "proc-erasure")
    for ledger in (T.consent, T.policies):
        assert permits(plan, Role.ERASURE, "WRITE", "topic", ledger)
        assert not permits(plan, Role.PROCESSOR, "WRITE", "topic", ledger)
    # The heartbeat needs no more than writing: no read of policies, no config change.
    assert not permits(plan, Role.ERASURE, "READ", "topic", T.policies)
    assert not permits(plan, Role.ERASURE, "ALTER_CONFIGS", "topic", T.policies)
