"""The load simulator against the real pipeline (Mosquitto → bridge → Kafka → worker →
SQLite): every event the policy stores lands exactly once, per device and seq, also
when Mosquitto is killed (-9) mid-run; and the CLI's failures are one Error line."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from edge_agent.simulate import LoadProgress, LoadReport, LoadSpec, SimAccount, run_load
from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.errors import BrokerError
from stream_processor.processor.demo_seed import gate_site_secret, seed_demo
from stream_processor.runtime.devices import config_path, register_device
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.stack.mosquitto import Mosquitto
from tests.conftest import FACEGATE, Pipeline, free_ports, prepare_bridge_session, wait_for

pytestmark = pytest.mark.e2e


def sim_accounts(p: Pipeline, sites: int, per_site: int) -> list[SimAccount]:
    """Registered devices of tenant ``demo`` on sites of this test only, with every
    simulated resident's consent and the demo policy on the pipeline's ledgers."""
    settings = p.stack.settings()
    broker = Mosquitto(settings)
    accounts, dirs = [], []
    for s in range(sites):
        for g in range(per_site):
            ident = DeviceIdentity("demo", f"s{s}-{p.tag}", f"gate-{g}", "sim")
            path = Path(register_device(settings, ident, tls=False, broker=broker))
            data_dir = p.tmp / "edge" / ident.username
            secret = gate_site_secret(ident, data_dir)
            accounts.append(SimAccount(DeviceConnection.load(path), secret))
            dirs.append((ident, data_dir))
    deadline = time.monotonic() + 60
    while True:
        try:
            seed_demo(settings.kafka_bootstrap, p.topics(), dirs, residents=200, consenting=1.0,
                      auth=kafka_python_auth(settings, Role.OFFICE))  # fmt: skip
            return accounts
        except BrokerError:
            # A topic created a moment ago can have no partition leader yet on a busy
            # machine: its metadata says "no such topic" for a while.
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def start_pipeline(p: Pipeline) -> None:
    prepare_bridge_session(p)
    p.start("bridge", "run", name="bridge")
    p.start("processor", "worker", name="processor")


def stored_per_device(path: Path) -> dict[tuple[str, str, str, str], tuple[int, int, int, int]]:
    """(tenant, site, gate, device) -> (rows, distinct seqs, lowest seq, highest seq)."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute(
            "SELECT tenant, site, gate, device, count(*), count(DISTINCT seq), min(seq), max(seq)"
            " FROM events GROUP BY tenant, site, gate, device"
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()
    return {tuple(r[:4]): tuple(r[4:]) for r in rows}


def assert_stored_exactly_once(p: Pipeline, report: LoadReport) -> None:
    wait_for(
        lambda: sum(r[0] for r in stored_per_device(p.store_path).values())
        >= report.expected_stored,
        120, f"{report.expected_stored} rows stored",
    )  # fmt: skip
    time.sleep(2)  # a duplicate row would show up now
    stored = stored_per_device(p.store_path)
    assert len(stored) == len(report.per_device)
    for ident, dev in report.per_device.items():
        rows, distinct, low, high = stored[(ident.tenant, ident.site, ident.gate, ident.device)]
        assert dev.seqs is not None
        assert rows == distinct == dev.expected_stored, ident
        assert dev.seqs[0] <= low <= high <= dev.seqs[1]


def test_a_run_is_stored_exactly_once_per_device_and_seq_across_a_mosquitto_kill(
    pipeline: Pipeline,
) -> None:
    """Two sites of two gates, published from two processes; Mosquitto is killed (-9)
    mid-run. What was not confirmed goes out again, and every event the policy stores
    lands exactly once per device and seq. One run for both points: a run without the
    kill showed nothing this one does not (the CLI test below is a fault-free run,
    checked row for row)."""
    accounts = sim_accounts(pipeline, sites=2, per_site=2)
    start_pipeline(pipeline)
    spec = LoadSpec(sites=2, devices_per_site=2, rate=300, duration_s=5, processes=2,
                    confirm_timeout_s=2, drain_timeout_s=120, seed=5)  # fmt: skip
    result: list[LoadReport] = []
    flowing = threading.Event()

    def progress(p: LoadProgress) -> None:
        if p.published >= 300:
            flowing.set()

    runner = threading.Thread(
        target=lambda: result.append(run_load(spec, accounts, on_progress=progress))
    )
    runner.start()
    # Spawning the publishers can take seconds on a busy machine: kill mid-flow, not before.
    assert flowing.wait(60), "the simulator published nothing within 60 s"
    broker = Mosquitto(pipeline.stack.settings())
    broker.kill()
    time.sleep(1)
    broker.up()
    runner.join(240)
    (report,) = result
    assert report.reconnects >= 4  # every device came back
    assert report.publishes > report.made  # what was not confirmed went out again
    assert report.made >= 1000
    assert report.published == report.confirmed == report.made
    assert report.unconfirmed == report.refused == 0
    assert 0 < report.expected_stored < report.made  # unknown faces are never stored
    assert report.expected_stored == report.made - report.by_kind["unknown_face"]
    assert_stored_exactly_once(pipeline, report)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FACEGATE, "simulate", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def assert_one_error(out: subprocess.CompletedProcess[str], text: str) -> None:
    assert out.returncode == 69, out
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and text in errors[0], out.stderr


def test_the_cli_says_the_stack_is_down_in_one_line(pipeline: Pipeline, tmp_path: Path) -> None:
    (closed,) = free_ports(1)
    env = {**pipeline.env, "FACEGATE_STATE_DIR": str(tmp_path), "FACEGATE_MQTT_PORT": str(closed)}
    out = run_cli(env, "--events", "10")
    assert_one_error(out, f"cannot reach MQTT at 127.0.0.1:{closed}")
    assert "facegate stack up" in out.stderr


def test_the_cli_fails_when_the_broker_took_nothing(pipeline: Pipeline) -> None:
    """A gate whose account is another device's: the ACL refuses every publish."""
    settings = pipeline.stack.settings()
    other = DeviceIdentity("demo", f"o-{pipeline.tag}", "gate-1", "cam-1")
    theirs = DeviceConnection.load(
        Path(register_device(settings, other, tls=False, broker=Mosquitto(settings)))
    )
    ours = DeviceIdentity("demo", "site-1", "gate-1", "sim")
    mqtt = {**theirs.mqtt.model_dump(mode="json"),
            "password": theirs.mqtt.password.get_secret_value()}  # fmt: skip
    path = config_path(settings, ours)
    path.write_text(json.dumps({"tenant": ours.tenant, "site": ours.site, "gate": ours.gate,
                                "device": ours.device, "mqtt": mqtt}))  # fmt: skip
    try:
        out = run_cli(pipeline.env, "--sites", "1", "--devices-per-site", "1", "--events", "3",
                      "--no-register", "--no-consent", "--drain-timeout", "20")  # fmt: skip
    finally:
        path.unlink()
    assert_one_error(out, "published nothing")
    assert "refused 3" in out.stdout


def test_the_cli_registers_seeds_publishes_and_reports_what_will_be_stored(
    pipeline: Pipeline,
) -> None:
    start_pipeline(pipeline)
    out = run_cli(pipeline.env, "--sites", "1", "--devices-per-site", "2", "--events", "600",
                  "--rate", "0", "--processes", "1", "--drain-timeout", "60")  # fmt: skip
    assert out.returncode == 0, out
    assert "Traceback" not in out.stderr
    summary = next(line for line in out.stdout.splitlines() if "expected stored" in line)
    expected = int(summary.split("expected stored ")[1].split(" ")[0].replace(",", ""))
    assert "made 600, published 600" in out.stdout and "unconfirmed 0" in out.stdout
    wait_for(lambda: sum(r[0] for r in stored_per_device(pipeline.store_path).values())
             >= expected, 120, f"{expected} rows")  # fmt: skip
    time.sleep(2)
    stored = stored_per_device(pipeline.store_path)
    assert sorted(stored) == [("demo", "site-1", f"gate-{g}", "sim") for g in (1, 2)]
    assert sum(r[0] for r in stored.values()) == expected
    assert all(rows == distinct for rows, distinct, _, _ in stored.values())


def test_devices_on_the_tls_listener_publish_through_their_verified_connection(
    pipeline: Pipeline,
) -> None:
    settings = pipeline.stack.settings()
    accounts = []
    for g in range(2):
        ident = DeviceIdentity("demo", f"tls-{pipeline.tag}", f"gate-{g}", "sim")
        path = Path(register_device(settings, ident, tls=True, broker=Mosquitto(settings)))
        conn = DeviceConnection.load(path)
        assert conn.mqtt.ca_file is not None and conn.mqtt.port == settings.mqtt_tls_port
        accounts.append(SimAccount(conn, gate_site_secret(ident, pipeline.tmp / ident.username)))
    spec = LoadSpec(devices_per_site=2, rate=0, events=3000, confirms=False, processes=1,
                    drain_timeout_s=30)  # fmt: skip
    report = run_load(spec, accounts)
    assert report.made == report.published == 3000 and report.unconfirmed == 0


def test_ctrl_c_stops_the_run_with_a_summary_and_no_traceback(pipeline: Pipeline) -> None:
    """The terminal sends SIGINT to the whole process group, publishers included."""
    proc = subprocess.Popen(
        [FACEGATE, "simulate", "--sites", "1", "--devices-per-site", "2", "--duration", "120",
         "--rate", "200", "--no-consent", "--drain-timeout", "2"],
        env=pipeline.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("[simulate] t="):
            break
    os.killpg(proc.pid, signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "[simulate] done in" in rest
    # Nothing confirms without a bridge: said once, with what to start.
    assert "is the bridge running" in err
