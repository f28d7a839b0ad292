"""Edge agents discovered from the device registry: `facegate devices add
--metrics-address` makes a gate agent a Prometheus target (no announcement file:
the agent runs on the site's network, not beside the cloud's state), labelled with
its tenant/site/gate/device only; `devices remove` drops the target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream_processor.runtime.targets import targets_dir
from tests.conftest import free_ports, wait_for
from tests.monitoring.prom import Prom
from tests.support.edge import AgentProcess, Assets, Device, cli, write_config

pytestmark = pytest.mark.e2e


def _ids(device: Device) -> list[str]:
    i = device.identity
    return ["--tenant", i.tenant, "--site", i.site, "--gate", i.gate, "--device", i.device]


def test_a_registered_agent_is_scraped_and_removing_the_device_drops_it(
    prom: Prom, device: Device, assets: Assets, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    port = free_ports(1)[0]
    config = write_config(tmp_path, assets, device.connection,
                          http={"enabled": True, "port": port})  # no announce_dir
    agents.append(AgentProcess(config, tmp_path / "agent.log"))
    address = f"127.0.0.1:{port}"
    cli("devices", "add", *_ids(device), "--metrics-address", address, env=prom.env)
    assert not list(targets_dir(prom.state_dir).glob("facegate-edge-*.json"))

    up = f'up{{job="facegate-edge",instance="{address}"}}'
    wait_for(lambda: [r["value"][1] for r in prom.query(up)] == ["1"], 60, "the agent scraped")
    [found] = prom.query(up)
    labels = {k: v for k, v in found["metric"].items() if k not in ("__name__", "instance")}
    i = device.identity
    assert labels == {"job": "facegate-edge", "tenant": i.tenant, "site": i.site,
                      "gate": i.gate, "device": i.device}

    cli("devices", "remove", *_ids(device), env=prom.env)

    def gone() -> bool:
        active = prom.get("/api/v1/targets", state="active")["activeTargets"]
        return all(t["labels"].get("instance") != address for t in active)

    wait_for(gone, 30, "the target dropped")


def test_a_bad_metrics_address_is_one_error_and_registers_nothing(prom: Prom) -> None:
    ids = ["--tenant", "acme", "--site", "badaddr", "--gate", "g1", "--device", "d1"]
    for bad in ("http://10.0.0.5:9100", "10.0.0.5", "10.0.0.5:0", "gate/x:9100", "0.0.0.0:9100"):
        result = cli("devices", "add", *ids, "--metrics-address", bad, check=False, env=prom.env)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert "metrics address" in result.stderr
    listed = cli("devices", "list", "--json", env=prom.env).stdout
    assert all(json.loads(row)["site"] != "badaddr" for row in listed.splitlines())
