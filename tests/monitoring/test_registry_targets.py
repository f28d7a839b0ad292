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
from tests.monitoring.agents import serving_port
from tests.monitoring.evidence import Evidence, wait_seen
from tests.monitoring.prom import Prom
from tests.support.edge import AgentProcess, Assets, Device, cli, write_config

pytestmark = pytest.mark.e2e


def _ids(device: Device) -> list[str]:
    i = device.identity
    return ["--tenant", i.tenant, "--site", i.site, "--gate", i.gate, "--device", i.device]


def test_a_registered_agent_is_scraped_and_removing_the_device_drops_it(
    prom: Prom, device: Device, assets: Assets, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    config = write_config(tmp_path, assets, device.connection,
                          http={"enabled": True, "port": 0})  # no announce_dir
    agent = AgentProcess(config, tmp_path / "agent.log")
    agents.append(agent)
    address = f"127.0.0.1:{serving_port(agent)}"
    seen = Evidence(prom, instances=(address,), logs={"agent": agent.log},
                    procs={"agent": agent.proc})
    cli("devices", "add", *_ids(device), "--metrics-address", address, env=prom.env)
    assert not list(targets_dir(prom.state_dir).glob("facegate-edge-*.json"))

    # This device's target only: a series another target left at the same address
    # (Prometheus keeps one for 5 minutes) is not this one.
    up = f'up{{job="facegate-edge",instance="{address}",site="{device.identity.site}"}}'
    wait_seen(lambda: [r["value"][1] for r in prom.query(up)] == ["1"], 60, "the agent scraped",
              seen, alive=("agent",))
    [found] = prom.query(up)
    labels = {k: v for k, v in found["metric"].items() if k not in ("__name__", "instance")}
    i = device.identity
    assert labels == {"job": "facegate-edge", "tenant": i.tenant, "site": i.site,
                      "gate": i.gate, "device": i.device}

    cli("devices", "remove", *_ids(device), env=prom.env)

    def gone() -> bool:
        active = prom.get("/api/v1/targets", state="active")["activeTargets"]
        return all(t["labels"].get("instance") != address for t in active)

    wait_seen(gone, 30, "the target dropped", seen)


def test_a_bad_metrics_address_is_one_error_and_registers_nothing(prom: Prom) -> None:
    ids = ["--tenant", "acme", "--site", "badaddr", "--gate", "g1", "--device", "d1"]
    for bad in ("http://10.0.0.5:9100", "10.0.0.5", "10.0.0.5:0", "gate/x:9100", "0.0.0.0:9100"):
        result = cli("devices", "add", *ids, "--metrics-address", bad, check=False, env=prom.env)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert "metrics address" in result.stderr
    listed = cli("devices", "list", "--json", env=prom.env).stdout
    assert all(json.loads(row)["site"] != "badaddr" for row in listed.splitlines())


def test_a_wait_that_times_out_shows_what_prometheus_and_the_process_saw(
    prom: Prom, device: Device, tmp_path: Path
) -> None:
    """The next CI failure must explain itself: the target's last scrape error as
    Prometheus has it, the file the target came from, and the process's log."""
    dead = f"127.0.0.1:{free_ports(1)[0]}"  # registered, but nothing serves there
    cli("devices", "add", *_ids(device), "--metrics-address", dead, env=prom.env)
    try:
        def failed_once() -> bool:
            active = prom.get("/api/v1/targets", state="active")["activeTargets"]
            return any(t["labels"].get("instance") == dead and t["lastError"] for t in active)

        wait_for(failed_once, 30, "the first failed scrape")
        log = tmp_path / "gate.log"
        log.write_text("".join(f"line {n}\n" for n in range(100)))
        seen = Evidence(prom, instances=(dead,), logs={"gate": log})
        with pytest.raises(AssertionError) as failed:
            wait_seen(lambda: False, 0.2, "the dead gate", seen)
    finally:
        cli("devices", "remove", *_ids(device), env=prom.env)
    text = str(failed.value)
    assert text.startswith("timed out after 0.2s waiting for the dead gate\n")
    assert "connection refused" in text  # the target's lastError
    assert f"registry-{device.identity.username}.json" in text  # where it was found
    assert f'query up{{instance="{dead}"}}: [' in text and "'0']" in text
    assert "line 99" in text and "line 10\n" not in text  # the tail, not the whole log
    assert "prometheus log, last lines:" in text and "(could not read" not in text
