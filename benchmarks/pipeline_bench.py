"""End-to-end saturation: MQTT publish → stored row, the whole pipeline against the raw path.

For each store (``--stores sqlite,postgres``) a private stack on free ports (Mosquitto,
Kafka, PostgreSQL for that store, Prometheus scraping every process), then two phases
on it, each with the same simulated load (``facegate simulate``'s library: real MQTT
device accounts, consent granted to every simulated resident):

1. pipeline — bridge, processor worker, erasure worker and web app (20 open live
   dashboards: SSE clients on ``/console/live``), each a ``facegate`` process;
2. raw      — ``raw_path.py``: plain subscriber → plain producer → plain consumer
   with batched inserts into the same schema (pipeline processes stopped).

The offered rate rises through ``--rates`` (``--step-s`` each) until the stored rate
stops following it. Per step: offered, published and stored rate; latency
p50/p95/p99/max from the event's time to the row's ``stored_at_ms``; CPU seconds of
each process (``/proc``) and per 1k events. Writes a JSON result and PNG plots.

    .venv/bin/python benchmarks/pipeline_bench.py                                  # full run
    .venv/bin/python benchmarks/pipeline_bench.py --rates 2000,5000 --step-s 8 \\
        --stores sqlite --out /tmp/e2e.json --plots /tmp/e2e                        # proof
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _machine import BenchStack, free_ports, load_line, machine_line, private_stack, run  # noqa: E402
from _pipeline import (  # noqa: E402
    Component,
    CpuMeter,
    PostgresProbe,
    SqliteProbe,
    StoreProbe,
    broker_pids,
    check_alive,
    drop_mqtt_session,
    own_cpu_s,
    prometheus_stages,
    prometheus_targets,
    start_component,
    stop_components,
    wait_for,
)
from _pipeline_dashboards import Dashboards  # noqa: E402
from _pipeline_load import SimulatorDriver  # noqa: E402
from _pipeline_steps import Step, measure_latency, run_steps, saturation_rate  # noqa: E402

DEFAULT_RATES = "2000,5000,10000,15000,20000,25000,30000"


def pipeline_env(store: str) -> dict[str, str]:
    bridge, worker, erasure, web, prom = free_ports(5)
    return {
        "FACEGATE_STORE": store,
        "FACEGATE_LOG_LEVEL": "WARNING",
        "FACEGATE_BRIDGE_METRICS_PORT": str(bridge),
        "FACEGATE_PROCESSOR_METRICS_PORT": str(worker),
        "FACEGATE_ERASURE_METRICS_PORT": str(erasure),
        "FACEGATE_WEB_PORT": str(web),
        "FACEGATE_WEB_PUBLIC_URL": f"http://127.0.0.1:{web}",
        "FACEGATE_PROMETHEUS_PORT": str(prom),
        # Every 5 s rather than the default 15 s: the scrapes land inside each step.
        "FACEGATE_PROMETHEUS_SCRAPE_INTERVAL_S": "5",
    }


def probe_for(st: BenchStack, store: str, raw: bool) -> tuple[StoreProbe, list[str]]:
    """The store probe of a phase, and the raw consumer's ``--sqlite``/``--postgres-schema``."""
    if store == "sqlite":
        from stream_processor.runtime.layout import StateLayout

        path = st.state / "rawpath.sqlite" if raw else StateLayout(st.state).sqlite_path
        return SqliteProbe(path), ["--sqlite", str(path)]
    from raw_path import postgres_schema_dsn

    from stream_processor.runtime.settings import BrokerSettings
    from stream_processor.store.factory import store_dsn
    from stream_processor.store.settings import StoreSettings

    if raw:
        return PostgresProbe(postgres_schema_dsn("rawpath")), ["--postgres-schema", "rawpath"]
    return PostgresProbe(store_dsn(BrokerSettings(), StoreSettings())), []


def phase(
    st: BenchStack,
    store: str,
    raw: bool,
    args: argparse.Namespace,
    driver: SimulatorDriver,
    notes: dict[str, Any],
    prometheus_url: str,
) -> list[Step]:
    logs = st.state / "bench-logs"
    probe, where = probe_for(st, store, raw)
    py = sys.executable
    here = str(Path(__file__).with_name("raw_path.py"))
    if raw:
        run_cmd = [py, here, "topic"]
        start_component("rawpath-topic", run_cmd, st.env, logs).proc.wait(120)
        specs = {"raw-forward": [py, here, "forward"], "raw-store": [py, here, "store", *where]}
    else:
        specs = {
            "bridge": ["bridge", "run"],
            "worker": ["processor", "worker"],
            "erasure": ["erasure", "worker"],
            "web": ["web", "serve"],
        }
    comps = [start_component(n, argv, st.env, logs) for n, argv in specs.items()]
    dashboards: Dashboards | None = None
    try:
        if not raw:
            dashboards = Dashboards.open(st, driver.tenant, args.dashboards)
        time.sleep(args.settle_s)  # consumer groups joined, subscriptions made
        check_alive(comps)
        meter = meter_for(st, comps)
        label = "raw" if raw else "pipeline"
        steps = run_steps(label, store, args.rates, args.step_s, driver, probe, meter,
                          check=lambda: check_alive(comps))  # fmt: skip
        if not raw:
            notes["prometheus_targets"] = prometheus_targets(prometheus_url)
        drain(probe, driver.expected_total, args.drain_s)
    finally:
        if dashboards is not None:
            dashboards.close()
            notes["dashboards"] = {"open": dashboards.connected, "sse_frames": dashboards.frames}
        stop_components(comps)
        if not raw:
            from stream_processor.bridge.settings import BridgeSettings

            drop_mqtt_session(st.settings, BridgeSettings().client_id)
    measure_latency(steps, probe)
    if not raw:
        for s in steps:
            s.stages = prometheus_stages(prometheus_url, s.t1_ms / 1000, s.seconds)
    return steps


def meter_for(st: BenchStack, comps: list[Component]) -> CpuMeter:
    pids = {c.name: c.pid for c in comps}
    pids.update(broker_pids(st.state))
    return CpuMeter.of(pids, simulator=lambda: own_cpu_s(c.pid for c in comps))


def drain(probe: StoreProbe, expected: int, timeout_s: float) -> None:
    """Wait (bounded) for the backlog to land, so the next phase starts quiet."""
    try:
        wait_for(lambda: probe.count() >= expected, timeout_s, "drain", every_s=1.0)
    except TimeoutError:
        print(f"  backlog not drained within {timeout_s:.0f}s", flush=True)


def one_store(store: str, args: argparse.Namespace, notes: dict[str, Any]) -> list[Step]:
    from stream_processor.stack.monitoring.prometheus import Prometheus

    with private_stack(f"e2e-{store}", pipeline_env(store)) as st:
        prometheus = Prometheus(st.state)
        prometheus.up()
        try:
            driver = SimulatorDriver.prepare(st, args.sites, args.devices_per_site)
            steps = phase(st, store, False, args, driver, notes, prometheus.url)
            driver.reset_totals()
            steps += phase(st, store, True, args, driver, notes, prometheus.url)
        finally:
            prometheus.down()
    return steps


def report(
    steps: list[Step],
    args: argparse.Namespace,
    machine: str,
    notes: dict[str, dict[str, Any]],
    sizes: str,
) -> dict[str, Any]:
    from _pipeline_plots import plot_all, print_table

    summary: dict[str, Any] = {}
    for store in args.stores:
        pipe = [s for s in steps if s.store == store and s.phase == "pipeline"]
        raw = [s for s in steps if s.store == store and s.phase == "raw"]
        sat, raw_sat = saturation_rate(pipe), saturation_rate(raw)
        summary[store] = {
            "pipeline_saturation": sat,
            "raw_saturation": raw_sat,
            "ratio": sat / raw_sat if raw_sat else None,
            "soak_rate": sat / 2,
            **notes.get(store, {}),
        }
    result = {"machine": machine, "load_end": load_line(), "args": vars(args), "events": sizes,
              "summary": summary, "steps": [s.as_dict() for s in steps]}  # fmt: skip
    print_table(result)
    plot_all(result, Path(args.plots))
    return result


def event_sizes() -> str:
    """Mean and range of the simulator's encoded events (what the rates are per)."""
    import os

    from _machine import message_size_line

    from edge_agent.pseudonym import SiteSecret
    from edge_agent.simulate import SyntheticGate
    from edge_agent.wire import encode_event
    from edge_agent.wire.topics import DeviceIdentity

    ident = DeviceIdentity("demo", "site-00", "gate-0", "cam-1")
    gate = SyntheticGate(ident, SiteSecret("demo", "site-00", os.urandom(32)), residents=200)
    return message_size_line([encode_event(gate.maker()(i)) for i in range(2000)], "events")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    ap.add_argument("--rates", default=DEFAULT_RATES, help="offered events/s, one per step")
    ap.add_argument("--step-s", type=float, default=20.0, help="seconds per step")
    ap.add_argument("--sites", type=int, default=10)
    ap.add_argument("--devices-per-site", type=int, default=4)
    ap.add_argument("--dashboards", type=int, default=20, help="open live dashboards")
    ap.add_argument("--settle-s", type=float, default=8.0, help="wait before the first step")
    ap.add_argument("--drain-s", type=float, default=30.0, help="backlog wait after a phase")
    ap.add_argument("--out", default=str(REPO / "docs" / "img" / "pipeline_bench.json"))
    ap.add_argument("--plots", default=str(REPO / "docs" / "img" / "pipeline_bench"),
                    help="PNG path prefix")  # fmt: skip
    args = ap.parse_args()
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    args.rates = [float(r) for r in args.rates.split(",")]
    if not set(args.stores) <= {"sqlite", "postgres"}:
        raise SystemExit("Error: --stores takes sqlite and/or postgres")
    from stream_processor.runtime.settings import BrokerSettings

    auth = "on" if BrokerSettings().kafka_auth else "off"
    machine = f"{machine_line()}; Kafka SASL/SCRAM {auth}"
    print(machine, flush=True)
    started = time.monotonic()
    steps: list[Step] = []
    notes: dict[str, dict[str, Any]] = {}
    for store in args.stores:
        steps += one_store(store, args, notes.setdefault(store, {}))
    result = report(steps, args, machine, notes, event_sizes())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    took = time.monotonic() - started
    print(f"result {args.out}; plots {args.plots}_*.png; {took / 60:.1f} min; {load_line()}")


if __name__ == "__main__":
    run(main)
