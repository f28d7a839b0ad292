"""Client settings: every process finds the brokers through ``BrokerSettings`` and the
same ``FACEGATE_…`` variables; the local stack's own knobs stay in ``StackSettings``."""

from __future__ import annotations

import math
import typing
from pathlib import Path

import annotated_types as at
import pytest
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from stream_processor.bridge.settings import BridgeSettings
from stream_processor.processor.settings import ProcessorSettings
from stream_processor.runtime.settings import BrokerSettings, Topics
from stream_processor.stack.settings import StackSettings
from stream_processor.web.settings import WebSettings

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
        "kafka_node_ports",  # a process finds a cluster by its bootstrap list
    }  # fmt: skip
    # A process knows the cluster's size: the topics it creates are replicated by it.
    assert "kafka_nodes" in BrokerSettings.model_fields
    assert issubclass(StackSettings, BrokerSettings)


#: Values an operator's typo, a template gone wrong or a hostile environment may hold.
EXTREME_VALUES = [
    "-1", str(2**31), str(2**53), str(2**63), str(2**64), "9" * 40,
    "inf", "-inf", "nan", "1e308", "-1e308",
]  # fmt: skip


def _numeric_fields(cls: type[BaseSettings]) -> list[tuple[str, FieldInfo]]:
    out = []
    for name, field in cls.model_fields.items():
        kinds = typing.get_args(field.annotation) or (field.annotation,)
        if int in kinds or float in kinds:
            out.append((name, field))
    return out


def _within(value: float, field: FieldInfo) -> bool:
    for m in field.metadata:
        if isinstance(m, at.Ge) and not value >= m.ge:  # type: ignore[operator]
            return False
        if isinstance(m, at.Gt) and not value > m.gt:  # type: ignore[operator]
            return False
        if isinstance(m, at.Le) and not value <= m.le:  # type: ignore[operator]
            return False
        if isinstance(m, at.Lt) and not value < m.lt:  # type: ignore[operator]
            return False
    return True


@pytest.mark.parametrize(
    "cls", [BridgeSettings, ProcessorSettings, BrokerSettings, Topics, WebSettings]
)
def test_every_number_of_a_cloud_process_settings_is_bounded_and_finite(
    cls: type[BaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each int and float has an upper bound (a value past what Kafka, MQTT or a database
    holds fails at start-up as one clear line, not later as an overflow), and infinity or
    NaN is refused."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    fields = _numeric_fields(cls)
    assert fields
    for name, field in fields:
        assert any(isinstance(m, at.Le | at.Lt) for m in field.metadata), f"{cls.__name__}.{name}"
        for raw in EXTREME_VALUES:
            monkeypatch.setenv(f"{prefix}{name.upper()}", raw)
            try:
                value = getattr(cls(), name)
            except ValidationError as exc:
                assert name in str(exc)
                continue
            assert math.isfinite(value) and _within(value, field), (name, raw, value)
        monkeypatch.delenv(f"{prefix}{name.upper()}")
