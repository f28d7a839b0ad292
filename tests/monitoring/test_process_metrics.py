"""A process that had no /metrics gets one: `facegate audit checkpointer
--metrics-port` serves the log's signing health and announces itself to Prometheus
while it runs (and withdraws on a clean stop)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from stream_processor.runtime.targets import targets_dir
from tests.conftest import FACEGATE, StackHandle, free_ports
from tests.monitoring.evidence import Evidence, wait_seen

pytestmark = pytest.mark.component


def _metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:  # noqa: S310
            return str(r.read().decode())
    except OSError:
        return ""


def _announced(state: Path, port: int) -> list[Path]:
    return [
        p for p in targets_dir(state).glob("facegate-audit-*.json")
        if json.loads(p.read_text())[0]["targets"] == [f"127.0.0.1:{port}"]
    ]


def test_the_checkpointer_serves_and_announces_its_metrics(
    running_stack: StackHandle, tmp_path: Path
) -> None:
    import os

    port = free_ports(1)[0]
    log = open(tmp_path / "checkpointer.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [FACEGATE, "audit", "checkpointer", "--interval", "1", "--metrics-port", str(port)],
        env={**os.environ, **running_stack.env}, stdout=log, stderr=subprocess.STDOUT,
    )
    seen = Evidence(instances=(f"127.0.0.1:{port}",), state_dir=running_stack.state_dir,
                    logs={"checkpointer": tmp_path / "checkpointer.log"},
                    procs={"checkpointer": proc})
    try:
        wait_seen(lambda: "facegate_audit_unsigned_entries" in _metrics(port), 60,
                  "the checkpointer's /metrics", seen, alive=("checkpointer",))
        text = _metrics(port)
        assert "facegate_audit_last_checkpoint_age_seconds" in text
        [entry] = _announced(running_stack.state_dir, port)
        labels = json.loads(entry.read_text())[0]["labels"]
        assert labels == {"job": "facegate-audit", "facegate_instance": "checkpointer"}
    finally:
        proc.terminate()
        code = proc.wait(60)
        log.close()
    assert code == 0, (tmp_path / "checkpointer.log").read_text()
    assert _announced(running_stack.state_dir, port) == []


def _serves(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


def test_the_follower_binds_the_metrics_host_its_settings_name(
    running_stack: StackHandle, tmp_path: Path
) -> None:
    """FACEGATE_AUDIT_METRICS_HOST moves the follower's /metrics off loopback's
    127.0.0.1 (here to 127.0.0.2, another loopback address): it listens there only,
    and announces that address."""
    import os

    port = free_ports(1)[0]
    env = {**os.environ, **running_stack.env, "FACEGATE_AUDIT_METRICS_HOST": "127.0.0.2"}
    log = open(tmp_path / "follower.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([FACEGATE, "audit", "follow", "--metrics-port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    seen = Evidence(instances=(f"127.0.0.2:{port}",), state_dir=running_stack.state_dir,
                    logs={"follower": tmp_path / "follower.log"}, procs={"follower": proc})
    try:
        wait_seen(lambda: _serves("127.0.0.2", port), 60, "the follower's /metrics", seen,
                  alive=("follower",))
        assert not _serves("127.0.0.1", port)
        [entry] = [p for p in targets_dir(running_stack.state_dir).glob("facegate-audit-*.json")
                   if json.loads(p.read_text())[0]["targets"] == [f"127.0.0.2:{port}"]]
        assert json.loads(entry.read_text())[0]["labels"] == {"job": "facegate-audit"}
    finally:
        proc.terminate()
        code = proc.wait(60)
        log.close()
    assert code == 0, (tmp_path / "follower.log").read_text()
