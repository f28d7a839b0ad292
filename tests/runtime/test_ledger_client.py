"""The synchronous ledger reader on the real broker: latest value per key with
tombstones applied, incremental catch-up, and one-line errors for a missing topic
or an unreachable broker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from stream_processor.erasure.ledger_index import LedgerIndex
from stream_processor.errors import BrokerError
from stream_processor.runtime.ledger_client import LedgerReader, read_ledger_at, write_records
from stream_processor.runtime.topics import TopicSpec, ensure_topics
from tests.conftest import StackHandle, free_ports
from tests.support.kafka import login_kwargs

pytestmark = pytest.mark.component


@pytest.fixture
def ledger(running_stack: StackHandle) -> tuple[str, str]:
    bootstrap = running_stack.settings().kafka_bootstrap
    topic = f"t.ledger.{uuid.uuid4().hex[:8]}"
    ensure_topics(
        bootstrap, [TopicSpec(topic, 3, {"cleanup.policy": "compact"})], 1, admin(bootstrap)
    )
    return bootstrap, topic


def admin(bootstrap: str) -> dict[str, Any]:
    """The test is the operator: the admin's login on the suite's stack ({} without auth)."""
    return login_kwargs(bootstrap)


def test_latest_value_per_key_with_tombstones_applied(ledger: tuple[str, str]) -> None:
    bootstrap, topic = ledger
    records: list[tuple[bytes, bytes | None]] = [(f"k{i}".encode(), b"v1") for i in range(30)]
    records += [(b"k1", b"v2"), (b"k2", None), (b"k3", None), (b"k3", b"back")]
    assert write_records(bootstrap, topic, records, admin(bootstrap)) == len(records)
    state, ends = read_ledger_at(bootstrap, topic, timeout_s=30, auth=admin(bootstrap))
    expected = {f"k{i}".encode(): b"v1" for i in range(30) if i not in (1, 2, 3)}
    expected |= {b"k1": b"v2", b"k3": b"back"}
    assert state == expected
    assert sorted(ends) == [0, 1, 2] and sum(ends.values()) == len(records)


def test_a_kept_reader_hands_over_only_what_was_written_since(ledger: tuple[str, str]) -> None:
    bootstrap, topic = ledger
    write_records(bootstrap, topic, [(b"a", b"1"), (b"b", b"1")], admin(bootstrap))
    seen: list[tuple[bytes, bytes | None]] = []
    reader = LedgerReader(bootstrap, topic, "test-reader", 30, **admin(bootstrap))
    try:
        reader.catch_up(lambda k, v: seen.append((k, v)))
        assert sorted(seen) == [(b"a", b"1"), (b"b", b"1")]
        seen.clear()
        write_records(bootstrap, topic, [(b"a", None), (b"c", b"1")], admin(bootstrap))
        reader.catch_up(lambda k, v: seen.append((k, v)))
        assert sorted(seen, key=lambda r: r[0]) == [(b"a", None), (b"c", b"1")]
    finally:
        reader.close()
    index = LedgerIndex(bootstrap, topic, auth=admin(bootstrap))
    try:
        assert index.keys() == {b"b", b"c"}
        write_records(bootstrap, topic, [(b"b", None)], admin(bootstrap))
        assert index.keys() == {b"c"}
    finally:
        index.close()


def test_a_missing_topic_and_an_unreachable_broker_are_one_line_errors(
    ledger: tuple[str, str],
) -> None:
    bootstrap, _ = ledger
    with pytest.raises(BrokerError, match="does not exist; run: facegate stack up"):
        read_ledger_at(
            bootstrap, f"t.missing.{uuid.uuid4().hex[:8]}", timeout_s=10, auth=admin(bootstrap)
        )
    (closed,) = free_ports(1)
    with pytest.raises(BrokerError, match=f"cannot reach Kafka at 127.0.0.1:{closed}"):
        read_ledger_at(f"127.0.0.1:{closed}", "any", timeout_s=5)
