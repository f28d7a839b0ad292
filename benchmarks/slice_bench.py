"""End-to-end slice throughput: N gate devices → Mosquitto → bridge → Kafka → Faust → SQLite.

Starts a private stack on free ports (never touches a running demo), registers
the devices, runs one bridge and one processor worker as separate processes
(the CLI, as in production), fills each device's outbox and lets them publish
at once. Prints the publish rate and the rate at which rows land in the store.

    .venv/bin/python benchmarks/slice_bench.py --devices 8 --events 5000
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from _machine import BenchStack, load_line, machine_line, message_size_line, private_stack, run

from edge_agent.outbox import SqliteOutbox
from edge_agent.simulate import SyntheticGate
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire import encode_event
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.processor.demo_seed import gate_site_secret, seed_demo
from stream_processor.runtime.devices import register_device
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import Topics
from stream_processor.stack.mosquitto import Mosquitto


def stored(path: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--events", type=int, default=5000, help="events per device")
    ap.add_argument("--window", type=int, default=200, help="QoS 1 in flight per device")
    args = ap.parse_args()
    print(machine_line())
    with private_stack("slicebench", {"FACEGATE_LOG_LEVEL": "WARNING"}) as st:
        procs = start_pipeline(st)
        try:
            publishers, expected, sizes = prepare_devices(st, args.devices, args.events,
                                                          args.window)  # fmt: skip
            total = args.devices * args.events
            print(
                f"{args.devices} devices x {args.events} events = {total};"
                f" {message_size_line(sizes, 'events')}; QoS 1 window {args.window}"
            )
            time.sleep(3)  # let the worker join its group
            published_at, elapsed, n = publish_all(publishers, st.state, expected)
            print(
                f"published (all PUBACKed) in {published_at or float('nan'):.2f}s "
                f"= {total / (published_at or elapsed):.0f} events/s"
            )
            print(
                f"stored {n}/{expected} rows in {elapsed:.2f}s; {total} events decided"
                f" = {total * n / expected / elapsed:.0f} events/s end to end; {load_line()}"
            )
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)


def start_pipeline(st: BenchStack) -> list[subprocess.Popen[bytes]]:
    """One bridge and one processor worker, as separate processes (the CLI)."""
    facegate = str(Path(sys.executable).with_name("facegate"))
    return [
        subprocess.Popen([facegate, *argv], env=st.env, stdout=subprocess.DEVNULL,
                         stderr=open(st.state / f"{argv[0]}.log", "w"))  # noqa: SIM115
        for argv in (["bridge", "run"], ["processor", "worker"])
    ]  # fmt: skip


def prepare_devices(
    st: BenchStack, n_devices: int, events: int, window: int
) -> tuple[list[tuple[SqliteOutbox, OutboxPublisher]], int, list[bytes]]:
    """Devices registered, their outboxes filled; (publishers, rows expected, samples)."""
    publishers, samples, devices = [], [], []
    expected = 0
    for i in range(n_devices):
        # Tenant "demo": the processor enforces the demo policy, and every
        # simulated resident has consented, so every event but an unknown
        # face (never stored, only counted) must land in the store.
        ident = DeviceIdentity("demo", f"site-{i % 4}", f"gate-{i}", "cam-1")
        data_dir = st.state / "edge" / ident.username
        devices.append((ident, data_dir))
        conn = DeviceConnection.load(
            Path(register_device(st.settings, ident, broker=Mosquitto(st.settings)))
        )
        conn.mqtt.window = window
        outbox = SqliteOutbox(data_dir / "outbox.sqlite")
        # The site office's secret, as seed_demo grants consents under it.
        gate = SyntheticGate(ident, gate_site_secret(ident, data_dir), residents=200, seed=i)
        for start in range(0, events, 1000):
            chunk = outbox.append_many([gate.maker() for _ in range(min(1000, events - start))])
            samples.append(encode_event(chunk[0]))
            expected += sum(e.kind != "unknown_face" for e in chunk)
        publishers.append((outbox, OutboxPublisher(outbox, ident, conn.mqtt)))
    # The office writes consents and policies; with FACEGATE_KAFKA_AUTH on it logs in.
    office = kafka_python_auth(st.settings, Role.OFFICE)
    seed_demo(st.settings.kafka_bootstrap, Topics(), devices, residents=200, consenting=1.0,
              auth=office)  # fmt: skip
    return publishers, expected, samples


def publish_all(
    publishers: list[tuple[SqliteOutbox, OutboxPublisher]], state: Path, expected: int
) -> tuple[float | None, float, int]:
    """Every outbox published at once: (all PUBACKed after s, all stored after s, rows)."""
    store = state / "store" / "events.sqlite"
    t0 = time.monotonic()
    stops = [threading.Event() for _ in publishers]
    for (_, pub), stop in zip(publishers, stops, strict=True):
        threading.Thread(target=pub.run, args=(stop,), daemon=True).start()
    published_at = None
    while time.monotonic() - t0 < 600:
        if published_at is None and all(o.depth() == 0 for o, _ in publishers):
            published_at = time.monotonic() - t0
        if stored(store) >= expected:
            break
        time.sleep(0.25)
    elapsed = time.monotonic() - t0
    # Rows can land before the last PUBACKs are applied to the outboxes.
    while published_at is None and time.monotonic() - t0 < elapsed + 30:
        if all(o.depth() == 0 for o, _ in publishers):
            published_at = time.monotonic() - t0
        time.sleep(0.05)
    for stop in stops:
        stop.set()
    return published_at, elapsed, stored(store)


if __name__ == "__main__":
    run(main)
