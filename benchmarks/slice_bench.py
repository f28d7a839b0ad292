"""End-to-end slice throughput: N gate devices → Mosquitto → bridge → Kafka → Faust → SQLite.

Starts a private stack on free ports (never touches a running demo), registers
the devices, runs one bridge and one processor worker as separate processes
(the CLI, as in production), fills each device's outbox and lets them publish
at once. Prints the publish rate and the rate at which rows land in the store.

    .venv/bin/python benchmarks/slice_bench.py --devices 8 --events 5000
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402

from edge_agent.outbox import SqliteOutbox  # noqa: E402
from edge_agent.pseudonym import load_or_create_site_secret  # noqa: E402
from edge_agent.simulate import SyntheticGate  # noqa: E402
from edge_agent.uplink.publisher import OutboxPublisher  # noqa: E402
from edge_agent.uplink.settings import DeviceConnection  # noqa: E402
from edge_agent.wire import encode_event  # noqa: E402
from edge_agent.wire.topics import DeviceIdentity  # noqa: E402
from stream_processor.processor.demo_seed import seed_demo  # noqa: E402
from stream_processor.runtime.devices import register_device  # noqa: E402
from stream_processor.runtime.settings import Topics  # noqa: E402
from stream_processor.stack.mosquitto import Mosquitto  # noqa: E402
from stream_processor.stack.settings import StackSettings  # noqa: E402
from stream_processor.stack.stack import Stack  # noqa: E402


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


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

    state = Path(tempfile.mkdtemp(prefix="facegate-bench-"))
    mqtt, kafka, ctrl = free_ports(3)
    env = {
        **os.environ,
        "FACEGATE_STATE_DIR": str(state),
        "FACEGATE_MQTT_PORT": str(mqtt),
        "FACEGATE_KAFKA_PORT": str(kafka),
        "FACEGATE_KAFKA_CONTROLLER_PORT": str(ctrl),
        "FACEGATE_LOG_LEVEL": "WARNING",
    }
    settings = StackSettings(
        state_dir=state, mqtt_port=mqtt, kafka_port=kafka, kafka_controller_port=ctrl
    )
    stack = Stack(settings)
    print(machine_line())
    t = time.monotonic()
    stack.up()
    print(f"stack up in {time.monotonic() - t:.1f}s")
    facegate = str(Path(sys.executable).with_name("facegate"))
    procs = [
        subprocess.Popen([facegate, "bridge", "run"], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(state / "bridge.log", "w")),  # noqa: SIM115
        subprocess.Popen([facegate, "processor", "worker"], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(state / "processor.log", "w")),  # noqa: SIM115
    ]  # fmt: skip
    try:
        publishers = []
        sizes = []
        expected = 0
        devices = []
        for i in range(args.devices):
            # Tenant "demo": the processor enforces the demo policy, and every
            # simulated resident has consented, so every event but an unknown
            # face (never stored, only counted) must land in the store.
            ident = DeviceIdentity("demo", f"site-{i % 4}", f"gate-{i}", "cam-1")
            data_dir = state / "edge" / ident.username
            devices.append((ident, data_dir))
            conn = DeviceConnection.load(
                Path(register_device(settings, ident, broker=Mosquitto(settings)))
            )
            conn.mqtt.window = args.window
            outbox = SqliteOutbox(data_dir / "outbox.sqlite")
            secret = load_or_create_site_secret(data_dir / "site.secret")
            gate = SyntheticGate(ident, secret, residents=200, seed=i)
            for start in range(0, args.events, 1000):
                chunk = min(1000, args.events - start)
                events = outbox.append_many([gate.maker() for _ in range(chunk)])
                sizes.append(len(encode_event(events[0])))
                expected += sum(e.kind != "unknown_face" for e in events)
            publishers.append((outbox, OutboxPublisher(outbox, ident, conn.mqtt)))
        seed_demo(settings.kafka_bootstrap, Topics(), devices, residents=200, consenting=1.0)
        total = args.devices * args.events
        print(
            f"{args.devices} devices x {args.events} events = {total}, "
            f"~{sum(sizes) / len(sizes):.0f} B per event, QoS 1 window {args.window}"
        )
        time.sleep(3)  # let the worker join its group
        store = state / "store" / "events.sqlite"
        t0 = time.monotonic()
        stops = [threading.Event() for _ in publishers]
        threads = [
            threading.Thread(target=pub.run, args=(stop,), daemon=True)
            for (_, pub), stop in zip(publishers, stops, strict=True)
        ]
        for th in threads:
            th.start()
        published_at = None
        while time.monotonic() - t0 < 600:
            if published_at is None and all(o.depth() == 0 for o, _ in publishers):
                published_at = time.monotonic() - t0
            n = stored(store)
            if n >= expected:
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
        n = stored(store)
        print(
            f"published (all PUBACKed) in {published_at or float('nan'):.2f}s "
            f"= {total / (published_at or elapsed):.0f} events/s"
        )
        print(
            f"stored {n}/{expected} rows in {elapsed:.2f}s; {total} events decided"
            f" = {total * n / expected / elapsed:.0f} events/s end to end"
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
