"""The stack's Prometheus on its own (no brokers): started from the Debian package with
the generated config, idempotent, refuses a taken port with a clear error, writes a
target per process kind the settings name, and `stack down` stops it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from stream_processor.bridge.settings import BridgeSettings
from stream_processor.errors import StackError
from stream_processor.runtime.targets import target_entry
from stream_processor.stack.monitoring.prometheus import Prometheus
from stream_processor.stack.monitoring.settings import MonitoringSettings
from stream_processor.stack.settings import StackSettings
from stream_processor.stack.stack import Stack
from tests.conftest import free_ports

pytestmark = pytest.mark.component


def _settings(port: int) -> MonitoringSettings:
    return MonitoringSettings(port=port, scrape_interval_s=1, evaluation_interval_s=1)


def test_up_is_idempotent_loads_the_rules_and_stack_down_stops_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state = tmp_path
    port, bridge_port, *broker_ports = free_ports(5)
    monkeypatch.setenv("FACEGATE_PROMETHEUS_PORT", str(port))
    monkeypatch.setenv("FACEGATE_BRIDGE_METRICS_PORT", str(bridge_port))
    prometheus = Prometheus(state, _settings(port))
    try:
        first = prometheus.up()
        assert first.running and first.ready
        assert prometheus.up().pid == first.pid  # a second up reloads, starts nothing
        with urllib.request.urlopen(f"{prometheus.url}/api/v1/rules", timeout=10) as r:  # noqa: S310
            groups = json.loads(r.read())["data"]["groups"]
        alerts = {rule["name"] for g in groups for rule in g["rules"]}
        assert {"GateOffline", "ConsumerLag", "CertificateExpiry", "AuditLogForked"} <= alerts
        configured = prometheus.targets / "configured-facegate-bridge.json"
        [entry] = json.loads(configured.read_text())
        assert entry["targets"] == [f"127.0.0.1:{bridge_port}"]
        # The labels a running bridge announces itself with: one target, not two.
        announced = target_entry("facegate-bridge", f"127.0.0.1:{bridge_port}",
                                 BridgeSettings().client_id)
        assert [entry] == announced
        monkeypatch.delenv("FACEGATE_BRIDGE_METRICS_PORT")
        prometheus.up()
        assert not configured.exists()  # no longer named by the settings: no longer expected

        settings = StackSettings(
            state_dir=state, mqtt_port=broker_ports[0], kafka_port=broker_ports[1],
            kafka_controller_port=broker_ports[2],
        )
        assert Stack(settings).status().prometheus is not None
        after = Stack(settings).down()
        assert after.prometheus is None
        assert not prometheus.status().running
    finally:
        prometheus.down()


def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    first = Prometheus(tmp_path / "first", _settings(port))
    try:
        first.up()
        taken = f"port 127.0.0.1:{port} is taken.*FACEGATE_PROMETHEUS_PORT"
        with pytest.raises(StackError, match=taken):
            Prometheus(tmp_path / "second", _settings(port)).up()
    finally:
        first.down()


def test_the_generated_config_passes_promtool(tmp_path: Path) -> None:
    import subprocess

    from stream_processor.runtime.system import require_binary

    prometheus = Prometheus(tmp_path, _settings(free_ports(1)[0]))
    prometheus.write_config()
    result = subprocess.run(
        [require_binary("promtool", "prometheus"), "check", "config", str(prometheus.config)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
