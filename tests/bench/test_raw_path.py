"""The end-to-end benchmark's ceiling and harness on the real brokers: the raw path
(plain subscriber → producer → consumer with batched inserts) stores every event the
simulator published exactly once, in the store schema, and the harness reads CPU, the
stack's broker processes and per-row latency from what it started."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.simulate import LoadSpec, SimAccount, run_load
from tests.conftest import StackHandle, wait_for

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))  # the benchmarks import each other as scripts

from _pipeline import (  # noqa: E402
    SqliteProbe,
    broker_pids,
    check_alive,
    sample,
    start_component,
    stop_components,
)

pytestmark = pytest.mark.e2e

TENANT = "rawbench"


def _accounts(stack: StackHandle) -> list[SimAccount]:
    from edge_agent.pseudonym import SiteSecret
    from edge_agent.uplink.settings import DeviceConnection
    from edge_agent.wire.topics import DeviceIdentity
    from stream_processor.runtime.devices import register_device
    from stream_processor.stack.mosquitto import Mosquitto

    settings = stack.settings()  # type: ignore[no-untyped-call]
    out = []
    for g in range(2):
        ident = DeviceIdentity(TENANT, "site-1", f"gate-{g}", "cam-1")
        path = register_device(settings, ident, broker=Mosquitto(settings))
        out.append(
            SimAccount(
                DeviceConnection.load(Path(path)), SiteSecret(TENANT, "site-1", os.urandom(32))
            )
        )
    return out


def test_raw_path_stores_each_published_event_once(
    running_stack: StackHandle, tmp_path: Path
) -> None:
    env = {**os.environ, **running_stack.env, "FACEGATE_LOG_LEVEL": "WARNING"}
    raw = str(BENCH / "raw_path.py")
    subprocess.run([sys.executable, raw, "topic"], env=env, check=True, timeout=120)
    db = tmp_path / "raw.sqlite"
    comps = [
        start_component("raw-forward", [sys.executable, raw, "forward"], env, tmp_path),
        start_component(
            "raw-store", [sys.executable, raw, "store", "--sqlite", str(db)], env, tmp_path
        ),  # fmt: skip
    ]
    try:
        time.sleep(3)  # subscribed, group joined: a plain subscriber keeps no session
        check_alive(comps)
        t0 = int(time.time() * 1000)
        spec = LoadSpec(devices_per_site=2, events=600, rate=0, confirms=False, seed=7)
        report = run_load(spec, _accounts(running_stack))
        assert report.published == 600 and 0 < report.expected_stored < 600

        def per_device() -> dict[str, tuple[int, int]]:
            if not db.exists():
                return {}
            con = sqlite3.connect(db)
            try:
                q = ("SELECT device || '/' || gate, count(*), count(DISTINCT seq) FROM events"
                     " WHERE tenant = ? GROUP BY 1")  # fmt: skip
                return {r[0]: (r[1], r[2]) for r in con.execute(q, (TENANT,))}
            except sqlite3.OperationalError:
                return {}
            finally:
                con.close()

        want = {
            f"{i.device}/{i.gate}": (d.expected_stored, d.expected_stored)
            for i, d in report.per_device.items()
        }
        wait_for(lambda: per_device() == want, 60, "every published event stored once")
        # The harness: CPU of what it started, the stack's brokers, latency per row.
        assert sample(comps[0].pid).cpu_s > 0
        assert {"kafka", "mosquitto"} <= set(broker_pids(running_stack.state_dir))
        lat = SqliteProbe(db).latencies_ms(t0, int(time.time() * 1000) + 1)
        assert len(lat) == report.expected_stored and all(0 <= ms < 60_000 for ms in lat)
        check_alive(comps)
    finally:
        stop_components(comps)
    assert all(c.proc.returncode == 0 for c in comps), [c.log.read_text() for c in comps]
