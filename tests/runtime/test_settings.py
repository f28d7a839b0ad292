"""Client settings: every process finds the brokers through ``BrokerSettings`` and the
same ``FACEGATE_…`` variables; the local stack's own knobs stay in ``StackSettings``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stream_processor.runtime.settings import BrokerSettings
from stream_processor.stack.settings import StackSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FACEGATE_"):
            monkeypatch.delenv(name)


def test_the_local_stack_is_found_by_host_and_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FACEGATE_HOST", "10.0.0.7")
    monkeypatch.setenv("FACEGATE_KAFKA_PORT", "19092")
    monkeypatch.setenv("FACEGATE_MQTT_PORT", "11883")
    monkeypatch.setenv("FACEGATE_STATE_DIR", str(tmp_path / "rel" / ".." / "state"))
    broker, stack = BrokerSettings(), StackSettings()
    for s in (broker, stack):
        assert s.kafka_bootstrap == "10.0.0.7:19092"
        assert (s.host, s.mqtt_port) == ("10.0.0.7", 11883)
        assert s.state_dir == (tmp_path / "state").resolve()


def test_a_remote_cluster_is_named_by_its_bootstrap_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FACEGATE_KAFKA_BOOTSTRAP", "k1.example:9093,k2.example:9093")
    monkeypatch.setenv("FACEGATE_KAFKA_PORT", "19092")
    assert BrokerSettings().kafka_bootstrap == "k1.example:9093,k2.example:9093"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_KAFKA_PORT", "-1")
    with pytest.raises(ValidationError, match="kafka_port"):
        BrokerSettings()
    monkeypatch.setenv("FACEGATE_KAFKA_PORT", "9092")
    monkeypatch.setenv("FACEGATE_MQTT_PORT", "9092")
    with pytest.raises(ValidationError, match="must differ"):
        StackSettings()


def test_processes_do_not_see_the_stack_only_knobs() -> None:
    stack_only = set(StackSettings.model_fields) - set(BrokerSettings.model_fields)
    assert stack_only == {
        "mqtt_tls_bind", "kafka_controller_port", "kafka_libs", "kafka_heap", "start_timeout_s",
        "kafka_nodes", "kafka_node_ports",  # a process finds a cluster by its bootstrap list
    }  # fmt: skip
    assert issubclass(StackSettings, BrokerSettings)
