"""The bridge's Kafka producer batches for 50 ms by default, and keeps its guarantees.

Why 50 and not 10 (docs/benchmarks.md, issue 15): the idempotent producer sends one
request per partition per linger period and holds at most 5 in flight per broker
connection; when they are all out and a batch is past its linger, librdkafka's broker
threads busy-loop until an ack returns. The acks=all wait at which that starts is
5 x linger / (partitions each broker leads); on three nodes sharing two cores the
spin took the cores the followers needed, and the live p99 went to seconds.
"""

from __future__ import annotations

import pytest

from stream_processor.bridge.service import producer_config
from stream_processor.bridge.settings import BridgeSettings

#: The idempotent producer's in-flight cap per connection (librdkafka, Kafka protocol).
IDEMPOTENT_MAX_INFLIGHT = 5


def spin_threshold_ms(linger_ms: int, partitions_per_leader: int) -> float:
    """The ack latency past which every request slot of a connection is taken."""
    return IDEMPOTENT_MAX_INFLIGHT * linger_ms / partitions_per_leader


def test_the_default_linger_leaves_acks_over_100_ms_before_the_producer_spins() -> None:
    config = producer_config("127.0.0.1:1", BridgeSettings(instance="t"))
    # The benchmark's raw topic: 6 partitions on 3 leaders; one node leads all 6.
    assert spin_threshold_ms(config["linger.ms"], 2) >= 100
    assert spin_threshold_ms(config["linger.ms"], 6) >= 40
    assert spin_threshold_ms(10, 2) < 30  # the old default: under a loaded cluster's acks


def test_batching_longer_keeps_the_delivery_guarantees() -> None:
    config = producer_config("127.0.0.1:1", BridgeSettings(instance="t"))
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["linger.ms"] == BridgeSettings.model_fields["linger_ms"].default == 50


def test_an_operator_can_still_choose_the_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_BRIDGE_LINGER_MS", "10")
    assert producer_config("127.0.0.1:1", BridgeSettings(instance="t"))["linger.ms"] == 10
