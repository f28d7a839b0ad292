"""End to end: `facegate stack up --with-monitoring` runs Prometheus, which finds a
gate agent, a processor worker, a bridge and the web app through their own
announcements and scrapes them; killing the gate and the worker fires
GateMetricsDown, FacegateProcessDown and (in the cloud's view, through the web app)
GateOffline, read from /api/v1/alerts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from stream_processor.runtime.targets import targets_dir
from tests.conftest import Pipeline, free_ports
from tests.monitoring.agents import serving_port
from tests.monitoring.dashboards import LOOK_PANEL, panel_queries
from tests.monitoring.evidence import Evidence, wait_seen
from tests.monitoring.prom import Prom
from tests.support.edge import AgentProcess, Assets, Device, write_config

pytestmark = pytest.mark.e2e


def _announced(state_dir: Path, job: str, port: int) -> Path | None:
    for path in targets_dir(state_dir).glob(f"{job}-*.json"):
        if json.loads(path.read_text())[0]["targets"] == [f"127.0.0.1:{port}"]:
            return path
    return None


def _alert(prom: Prom, name: str, instance: str) -> dict[str, Any] | None:
    return next(
        (a for a in prom.firing()
         if a["labels"]["alertname"] == name and a["labels"].get("instance") == instance),
        None,
    )  # fmt: skip


def test_killed_gate_and_worker_fire_their_alerts(
    prom: Prom, pipeline: Pipeline, device: Device, assets: Assets, tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    started = time.monotonic()
    config = write_config(
        tmp_path, assets, device.connection,
        http={"enabled": True, "port": 0, "announce_dir": str(targets_dir(prom.state_dir))},
    )
    gate = AgentProcess(config, tmp_path / "agent.log")
    agents.append(gate)
    worker_port = free_ports(1)[0]
    pipeline.extra_env["FACEGATE_PROCESSOR_METRICS_PORT"] = str(worker_port)
    worker = pipeline.start("processor", "worker", name="worker")

    gate_at = f"127.0.0.1:{serving_port(gate)}"
    worker_at = f"127.0.0.1:{worker_port}"
    raw = pipeline.env["FACEGATE_TOPIC_RAW"]
    lag = f'facegate_processor_consumer_lag{{instance="{worker_at}",topic="{raw}"}}'
    seen = Evidence(prom, instances=(gate_at, worker_at), queries=(lag,),
                    logs={"agent": gate.log, "worker": pipeline.tmp / "worker.log"},
                    procs={"agent": gate.proc, "worker": worker})
    # Both are discovered from their own announcement files, and scraped.
    wait_seen(lambda: bool(prom.query(f'up{{instance="{gate_at}",job="facegate-edge"}} == 1')),
              60, "the gate scraped", seen, alive=("agent", "worker"))
    wait_seen(lambda: len(prom.query(lag)) == 3, 90, "the worker's lag on 3 partitions", seen,
              alive=("agent", "worker"))
    assert {r["metric"]["partition"] for r in prom.query(lag)} == {"0", "1", "2"}
    # The pipeline dashboard's ledger-look panel reads series this worker really exports.
    look = "facegate_processor_ledger_look_seconds_bucket"
    panel = [q.replace(f"{look}[", f'{look}{{instance="{worker_at}"}}[')
             for q in panel_queries("facegate-pipeline", LOOK_PANEL)]
    assert len(panel) == 2 and all(f'instance="{worker_at}"' in q for q in panel)
    wait_seen(lambda: all(len(prom.query(q)) == 1 for q in panel), 30,
              "the ledger-look panel's series", seen, alive=("worker",))
    assert not _alert(prom, "GateMetricsDown", gate_at)

    gate.kill9()
    worker.kill()  # SIGKILL: no clean exit, the announcements stay
    worker.wait(30)
    seen.queries = (*seen.queries, f'ALERTS{{instance=~"{gate_at}|{worker_at}"}}')
    wait_seen(lambda: _alert(prom, "GateMetricsDown", gate_at) is not None, 30,
              "GateMetricsDown", seen)
    wait_seen(lambda: _alert(prom, "FacegateProcessDown", worker_at) is not None, 30,
              "FacegateProcessDown", seen)
    down = _alert(prom, "FacegateProcessDown", worker_at)
    assert down is not None and down["labels"]["job"] == "facegate-processor"
    assert down["labels"]["severity"] == "critical"
    assert time.monotonic() - started < 120

    for job, port in (("facegate-edge", int(gate_at.rsplit(":", 1)[1])),
                      ("facegate-processor", worker_port)):
        path = _announced(prom.state_dir, job, port)
        assert path is not None  # left by the killed process: that is how it is seen down
        path.unlink()


def test_a_clean_stop_withdraws_the_announcement(
    prom: Prom, device: Device, assets: Assets, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    config = write_config(
        tmp_path, assets, device.connection,
        http={"enabled": True, "port": 0, "announce_dir": str(targets_dir(prom.state_dir))},
    )
    gate = AgentProcess(config, tmp_path / "agent.log")
    agents.append(gate)
    port = serving_port(gate)
    seen = Evidence(prom, instances=(f"127.0.0.1:{port}",), logs={"agent": gate.log},
                    procs={"agent": gate.proc})
    wait_seen(lambda: _announced(prom.state_dir, "facegate-edge", port) is not None, 10,
              "the announcement", seen, alive=("agent",))
    assert gate.stop() == 0
    assert _announced(prom.state_dir, "facegate-edge", port) is None


def test_a_gate_silent_in_the_cloud_view_fires_gate_offline(
    prom: Prom, pipeline: Pipeline, device: Device, assets: Assets, tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    """The field's view: no scrape of the gate, only its status reports through MQTT,
    the bridge and Kafka to the web app, whose unreachable count GateOffline watches."""
    from tests.conftest import prepare_bridge_session

    web_port, bridge_port = free_ports(2)
    pipeline.extra_env.update(
        FACEGATE_WEB_PORT=str(web_port),
        FACEGATE_WEB_PUBLIC_URL=f"http://127.0.0.1:{web_port}",
        # The agent reports every 10 s: silent for 15 s is gone.
        FACEGATE_WEB_DEVICE_UNREACHABLE_AFTER_S="15",
        FACEGATE_BRIDGE_METRICS_PORT=str(bridge_port),
    )
    prepare_bridge_session(pipeline)
    bridge = pipeline.start("bridge", "run", name="bridge")
    web = pipeline.start("web", "serve", name="web")
    gate = AgentProcess(write_config(tmp_path, assets, device.connection),
                        tmp_path / "agent.log")
    agents.append(gate)
    tenant = device.identity.tenant
    bridge_at, web_at = f"127.0.0.1:{bridge_port}", f"127.0.0.1:{web_port}"
    # The bridge is found through its announcement too; its first records are the
    # gate's status reports on their way to the web app.
    produced = f'sum(facegate_bridge_produced_total{{instance="{bridge_at}"}}) > 0'
    unreachable = f'facegate_web_devices_unreachable{{instance="{web_at}",tenant="{tenant}"}}'
    seen = Evidence(prom, instances=(bridge_at, web_at), queries=(produced, unreachable),
                    logs={"agent": gate.log, "bridge": pipeline.tmp / "bridge.log",
                          "web": pipeline.tmp / "web.log"},
                    procs={"agent": gate.proc, "bridge": bridge, "web": web})
    wait_seen(lambda: bool(prom.query(produced)), 90, "the gate's status through the bridge",
              seen, alive=("agent", "bridge", "web"))
    certs = prom.query(f'facegate_tls_certificate_not_after_seconds{{instance="{bridge_at}"}}'
                       " - time() > 300 * 86400")
    assert {r["metric"]["cert"] for r in certs} == {"mqtt_ca", "mqtt_server"}
    assert prom.query(unreachable) == []  # a tenant with every gate reporting has no series

    gate.kill9()
    wait_seen(lambda: [r["value"][1] for r in prom.query(unreachable)] == ["1"], 60,
              "the gate unreachable", seen, alive=("bridge", "web"))

    def offline() -> bool:
        return any(a["labels"]["alertname"] == "GateOffline"
                   and a["labels"].get("tenant") == tenant for a in prom.firing())

    seen.queries = (*seen.queries, 'ALERTS{alertname="GateOffline"}')
    wait_seen(offline, 30, "GateOffline firing", seen)
