"""Bridge benchmark: sustained MQTT → Kafka throughput and added latency, against a
raw baseline in the same run, plus the client side-by-side that chose the bridge's
MQTT and Kafka clients.

Starts a private stack on free ports (never touches a running demo). Phases:

1. clients  — MQTT drain of a pre-filled persistent session with manual acks:
              paho-mqtt vs the bridge's asyncio link; Kafka produce with a
              per-record confirmation, acks=all, idempotent: kafka-python vs
              confluent-kafka.
2. drain    — N events (~0.5 KB) queued in the bridge's persistent session, then
              drained by `facegate bridge run` (1..K instances, exclusive scopes);
              the same N queued for the raw baseline, drained by Debian's
              `mosquitto_sub | kcat -P` (QoS 1, but acked on receipt: no guarantee).
              Rate = N / (time from first to last record in Kafka).
3. latency  — live publishing at a fixed rate through each path; latency =
              Kafka LogAppendTime − the event's occurred_at_ms (set when the line
              is handed to mosquitto_pub), p50/p99 in ms.

Also printed: the bridge processes' CPU time per drained event (utime + stime
from /proc between the first and the last record in Kafka), split into the
asyncio loop (main thread), librdkafka's threads and any other Python thread:
a steadier figure than the rate on a shared machine (still not immune to it).

    .venv/bin/python benchmarks/bridge_bench.py --events 100000
    .venv/bin/python benchmarks/bridge_bench.py --instances 2 --write-docs
    .venv/bin/python benchmarks/bridge_bench.py --client-events 0 --no-baseline --no-latency \
        --py-spy /tmp/bridge.txt     # quick CPU check, with a py-spy profile of the drain
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402

from edge_agent.uplink.settings import DeviceConnection  # noqa: E402
from edge_agent.wire import Decision, EventKind, GateEvent, encode_event, new_event_id  # noqa: E402
from edge_agent.wire.topics import DeviceIdentity, event_topic  # noqa: E402
from stream_processor.bridge.session import ensure_bridge_session  # noqa: E402
from stream_processor.bridge.settings import BridgeSettings  # noqa: E402
from stream_processor.runtime.accounts import AccountBook  # noqa: E402
from stream_processor.runtime.devices import register_device  # noqa: E402
from stream_processor.runtime.layout import StateLayout  # noqa: E402
from stream_processor.runtime.topics import TopicSpec, ensure_topics  # noqa: E402
from stream_processor.stack.mosquitto import Mosquitto  # noqa: E402
from stream_processor.stack.settings import StackSettings  # noqa: E402
from stream_processor.stack.stack import Stack  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- bridge-bench:start -->", "<!-- bridge-bench:end -->"
TOPICS = {
    "raw": "bench.raw", "dlq": "bench.dlq", "acks": "bench.acks",
    "commands": "bench.commands", "baseline": "bench.baseline",
}  # fmt: skip


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# -- events ----------------------------------------------------------------------
def identity(tenant: str, i: int) -> DeviceIdentity:
    # Realistic, longish ids: the event comes out near 0.5 KB.
    return DeviceIdentity(
        tenant, f"compound-{i:04d}-north-residential-block", f"gate-{i:02d}-main-entrance",
        f"cam-{i:02d}-rk3588-edge-unit",
    )  # fmt: skip


#: Residents per site: a gate sees the same residents again and again (their
#: pseudonyms repeat), as the processor benchmark's 200 per site.
RESIDENTS = 200
#: --random-subjects: a new pseudonym per event instead (the decoder's memo of
#: valid pseudonyms never hits; a worst case, not a gate's traffic).
RANDOM_SUBJECTS = False


@functools.lru_cache(maxsize=4096)
def resident(site: str, i: int) -> str:
    return "ps1_" + hashlib.sha256(f"{site}/resident-{i}".encode()).hexdigest()[:32]


def make_event(ident: DeviceIdentity, seq: int, now_ms: int | None = None) -> bytes:
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return encode_event(
        GateEvent(
            schema_version=1, event_id=new_event_id(now), seq=seq, tenant=ident.tenant,
            site=ident.site, gate=ident.gate, device=ident.device, kind=EventKind.KEY_CARD,
            decision=Decision.GRANTED, purpose="access_control", occurred_at_ms=now,
            subject="ps1_" + os.urandom(16).hex()
            if RANDOM_SUBJECTS
            else resident(ident.site, seq * 7919 % RESIDENTS),
            model="keycard-reader-v2.4.1",
            consent_ref="consent:2026-01-01:resident-agreement-v3", reason="card_presented",
        )
    )  # fmt: skip


# -- CPU of the bridge processes ------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def _stat(path: str) -> tuple[str, float]:
    """(thread name, utime + stime in seconds) of one /proc stat file."""
    text = Path(path).read_text()
    name, rest = text[text.index("(") + 1 :].rsplit(")", 1)
    fields = rest.split()  # fields 14 and 15 of stat are utime and stime
    return name, (int(fields[11]) + int(fields[12])) / _TICK


def cpu_s(pids: list[int]) -> dict[str, float]:
    """CPU seconds of the bridge processes by thread group: the asyncio loop (main
    thread), librdkafka's own threads (``rdk:*``), and the other Python threads."""
    out = {"loop": 0.0, "librdkafka": 0.0, "python threads": 0.0}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                name, seconds = _stat(str(task / "stat"))
            except OSError:
                continue  # the thread ended
            group = "loop" if task.name == str(pid) else "python threads"
            out["librdkafka" if name.startswith("rdk:") else group] += seconds
    return out


# -- Kafka helpers -----------------------------------------------------------------
class Watch:
    """Polls a topic's end offsets; remembers when the first and the N-th record landed."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self._c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"w-{time.time_ns()}"})
        meta = self._c.list_topics(topic, timeout=10)
        self._parts = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
        self.base = self.size()

    def size(self) -> int:
        return sum(self._c.get_watermark_offsets(p, timeout=10)[1] for p in self._parts)

    def until(
        self, n: int, timeout_s: float, probe: Callable[[], T]
    ) -> tuple[float, float, int, T | None, T | None]:
        """Wait for ``n`` records: (first seen, n-th seen, count, probe() at each)."""
        first = done = None
        at_first: T | None = None
        at_done: T | None = None
        deadline = time.monotonic() + timeout_s
        got = 0
        while time.monotonic() < deadline:
            got = self.size() - self.base
            now = time.monotonic()
            if first is None and got > 0:
                first, at_first = now, probe()
            if got >= n:
                done, at_done = now, probe()
                break
            time.sleep(0.02)
        self._c.close()
        if first is None or done is None:
            raise SystemExit(f"only {got}/{n} records arrived in {timeout_s:.0f}s")
        return first, done, got, at_first, at_done


def latencies(bootstrap: str, topic: str, since_ms: int) -> list[float]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"l-{time.time_ns()}"})
    meta = c.list_topics(topic, timeout=10)
    parts = list(meta.topics[topic].partitions)
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    pos = dict.fromkeys(parts, 0)
    out: list[float] = []
    deadline = time.monotonic() + 120
    while any(pos[p] < ends[p] for p in parts) and time.monotonic() < deadline:
        for m in c.consume(10_000, 1.0):
            if m.error():
                continue
            pos[m.partition()] = m.offset() + 1
            occurred = json.loads(m.value())["occurred_at_ms"]
            if occurred >= since_ms:
                out.append(m.timestamp()[1] - occurred)
    c.close()
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- publishing ----------------------------------------------------------------------
def pub_argv(conn: DeviceConnection) -> list[str]:
    m = conn.mqtt
    return [
        "mosquitto_pub", "-h", m.host, "-p", str(m.port), "-u", m.username,
        "-P", m.password.get_secret_value(), "-V", "5", "-q", "1",
        "-t", event_topic(conn.identity), "-l",
    ]  # fmt: skip


def prefill(conns: list[DeviceConnection], per_device: int, tmp: Path) -> float:
    files = []
    for i, conn in enumerate(conns):
        path = tmp / f"prefill-{i}.txt"
        path.write_bytes(b"".join(make_event(conn.identity, s) + b"\n" for s in range(per_device)))
        files.append(path)
    t = time.monotonic()
    procs = [
        subprocess.Popen(pub_argv(c), stdin=f.open("rb")) for c, f in zip(conns, files, strict=True)
    ]
    for p in procs:
        if p.wait(600) != 0:
            raise SystemExit("mosquitto_pub failed")
    return time.monotonic() - t


def paced(conns: list[DeviceConnection], rate: float, seconds: float) -> int:
    """Publish at ``rate`` events/s in total for ``seconds``; returns how many."""
    procs = [subprocess.Popen(pub_argv(c), stdin=subprocess.PIPE) for c in conns]
    sent, seq = 0, 0
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        due = int(elapsed * rate) - sent
        if due > 0:
            for i in range(due):
                proc = procs[(sent + i) % len(procs)]
                assert proc.stdin is not None
                proc.stdin.write(make_event(conns[(sent + i) % len(conns)].identity, seq) + b"\n")
                seq += 1
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.flush()
            sent += due
        time.sleep(0.002)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    for proc in procs:
        proc.wait(60)
    return sent


# -- phases -----------------------------------------------------------------------------
def phase_clients(
    settings: StackSettings, conn: DeviceConnection, n: int, tmp: Path
) -> dict[str, float]:  # noqa: E501
    """MQTT drain (paho vs our link) and Kafka produce (kafka-python vs confluent-kafka)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from stream_processor.bridge.mqtt_link import MqttLink

    creds = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
    filt = f"facegate/v1/{conn.identity.tenant}/+/+/+/events"
    results: dict[str, float] = {}

    def session(cid: str) -> None:
        bs = BridgeSettings(instance=cid, scope=[conn.identity.tenant])
        ensure_bridge_session(settings.host, settings.mqtt_port, creds, bs)

    # paho, manual ack of each message, like the bridge before this benchmark
    session("paho")
    prefill([conn], n, tmp)
    done = threading.Event()
    count = [0]

    def on_message(c: Any, u: Any, m: Any) -> None:
        c.ack(m.mid, 1)
        count[0] += 1
        if count[0] >= n:
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="facegate-bridge-paho",
                    protocol=mqtt.MQTTv5, manual_ack=True)  # fmt: skip
    c.username_pw_set(creds.username, creds.password)
    c.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 5000
    t = time.monotonic()
    c.connect(settings.host, settings.mqtt_port, clean_start=False, properties=props)
    c.loop_start()
    done.wait(300)
    results["mqtt paho-mqtt 2.2.0 (manual ack)"] = n / (time.monotonic() - t)
    c.disconnect()
    c.loop_stop()

    # the bridge's asyncio link, PUBACKs written in batches
    session("link")
    prefill([conn], n, tmp)

    async def drain() -> float:
        got = [0]
        finished = asyncio.Event()
        link: MqttLink | None = None
        pending: list[int] = []

        def on_publish(p: Any) -> None:
            pending.append(p.packet_id)
            got[0] += 1
            if len(pending) >= 256 or got[0] >= n:
                assert link is not None
                link.ack(pending.copy())
                pending.clear()
            if got[0] >= n:
                finished.set()

        link = MqttLink(
            settings.host, settings.mqtt_port, "facegate-bridge-link",
            creds.username, creds.password, on_publish, receive_maximum=5000,
        )  # fmt: skip
        t0 = time.monotonic()
        await link.open([filt])
        await asyncio.wait_for(finished.wait(), 300)
        elapsed = time.monotonic() - t0
        await link.close()
        return n / elapsed

    results["mqtt facegate asyncio link (manual, batched acks)"] = asyncio.run(drain())

    # Kafka producers: n × ~0.5 KB, acks=all, idempotent, one confirmation per record
    payloads = [make_event(conn.identity, s) for s in range(n)]
    from kafka import KafkaProducer

    kp = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                       enable_idempotence=True, max_in_flight_requests_per_connection=1,
                       linger_ms=5, batch_size=262_144)  # fmt: skip
    confirmed = [0]
    t = time.monotonic()
    for p in payloads:
        kp.send(TOPICS["baseline"], key=b"k", value=p).add_callback(
            lambda _m: confirmed.__setitem__(0, confirmed[0] + 1)
        )
    kp.flush(300)
    results["kafka kafka-python 2.3.3 (idempotent)"] = n / (time.monotonic() - t)
    kp.close()

    from confluent_kafka import Producer

    cp = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True,
                   "acks": "all", "linger.ms": 5, "batch.size": 1_048_576})  # fmt: skip
    ok = [0]

    def report(err: Any, _m: Any) -> None:
        if err is None:
            ok[0] += 1

    t = time.monotonic()
    for p in payloads:
        while True:
            try:
                cp.produce(TOPICS["baseline"], p, key=b"k", on_delivery=report)
                break
            except BufferError:
                cp.poll(0.01)
        cp.poll(0)
    cp.flush(300)
    results["kafka confluent-kafka 2.16.1 (idempotent)"] = n / (time.monotonic() - t)
    return results


def start_bridges(env: dict[str, str], k: int, tenant: str, sites: list[str], tmp: Path,
                  settings: StackSettings) -> list[subprocess.Popen[bytes]]:  # fmt: skip
    creds = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
    facegate = str(Path(sys.executable).with_name("facegate"))
    procs = []
    for i in range(k):
        scope = [f"{tenant}/{s}" for j, s in enumerate(sites) if j % k == i]
        bs = BridgeSettings(instance=f"bench-{tenant}-{i}", scope=scope)
        ensure_bridge_session(settings.host, settings.mqtt_port, creds, bs)
        e = {**env, "FACEGATE_BRIDGE_INSTANCE": bs.instance,
             "FACEGATE_BRIDGE_SCOPE": json.dumps(scope)}  # fmt: skip
        procs.append((e, bs.instance))
    return [
        subprocess.Popen(
            [facegate, "bridge", "run"],
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / f"bridge-{name}.log", "ab"),
        )  # noqa: SIM115 # fmt: skip
        for e, name in procs
    ]


def stop(procs: list[Any]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def baseline_argv(settings: StackSettings, tenant: str, count: int | None) -> list[str]:
    creds = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
    argv = [
        "mosquitto_sub", "-h", settings.host, "-p", str(settings.mqtt_port),
        "-u", creds.username, "-P", creds.password, "-V", "5", "-q", "1", "-c",
        "-i", f"raw-baseline-{tenant}", "-x", "3600",
        "-t", f"facegate/v1/{tenant}/+/+/+/events",
    ]  # fmt: skip
    return argv + (["-C", str(count)] if count else [])


def start_baseline(settings: StackSettings, tenant: str, count: int | None) -> list[Any]:
    kcat = [
        "kcat", "-P", "-b", settings.kafka_bootstrap, "-t", TOPICS["baseline"],
        "-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5",
    ]  # fmt: skip
    sub = subprocess.Popen(baseline_argv(settings, tenant, count), stdout=subprocess.PIPE)
    pipe = subprocess.Popen(kcat, stdin=sub.stdout)
    assert sub.stdout is not None
    sub.stdout.close()
    return [sub, pipe]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events drained per path")
    ap.add_argument("--devices", type=int, default=8, help="publishing devices (one site each)")
    ap.add_argument("--instances", type=int, default=1, help="bridge instances (exclusive)")
    ap.add_argument("--client-events", type=int, default=50_000, help="0 = skip clients phase")
    ap.add_argument("--rate", type=float, default=5000, help="latency phase: events/s")
    ap.add_argument("--seconds", type=float, default=15, help="latency phase: duration")
    ap.add_argument("--no-baseline", action="store_true", help="skip the raw baseline drain")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency phase")
    ap.add_argument(
        "--random-subjects", action="store_true", help="a new pseudonym per event (worst case)"
    )
    ap.add_argument(
        "--py-spy",
        metavar="FILE",
        help="py-spy profile (raw stacks) of the first bridge during the drain",
    )
    ap.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    global RANDOM_SUBJECTS
    RANDOM_SUBJECTS = args.random_subjects

    state = Path(tempfile.mkdtemp(prefix="facegate-bridgebench-"))
    os.chmod(state, 0o755)  # noqa: S103 - Mosquitto may drop to another user
    mqtt, kafka, ctrl, tls = free_ports(4)
    settings = StackSettings(state_dir=state, mqtt_port=mqtt, kafka_port=kafka,
                             kafka_controller_port=ctrl, mqtt_tls_port=tls)  # fmt: skip
    env = {
        **os.environ, "FACEGATE_STATE_DIR": str(state), "FACEGATE_MQTT_PORT": str(mqtt),
        "FACEGATE_KAFKA_PORT": str(kafka), "FACEGATE_KAFKA_CONTROLLER_PORT": str(ctrl),
        "FACEGATE_MQTT_TLS_PORT": str(tls), "FACEGATE_LOG_LEVEL": "WARNING",
        "FACEGATE_TOPIC_RAW": TOPICS["raw"], "FACEGATE_TOPIC_DLQ": TOPICS["dlq"],
        "FACEGATE_TOPIC_ACKS": TOPICS["acks"], "FACEGATE_TOPIC_COMMANDS": TOPICS["commands"],
    }  # fmt: skip
    lines: list[str] = [machine_line()]
    print(lines[0], flush=True)
    stack = Stack(settings)
    t = time.monotonic()
    stack.up()
    print(f"stack up in {time.monotonic() - t:.1f}s", flush=True)
    appended = {"message.timestamp.type": "LogAppendTime"}
    ensure_topics(settings.kafka_bootstrap, [
        TopicSpec(TOPICS["raw"], 6, appended), TopicSpec(TOPICS["baseline"], 6, appended),
        TopicSpec(TOPICS["dlq"], 1), TopicSpec(TOPICS["acks"], 1), TopicSpec(TOPICS["commands"], 1),
    ])  # fmt: skip
    tmp = state / "bench"
    tmp.mkdir()
    try:
        conns = {
            tenant: [
                DeviceConnection.load(
                    Path(
                        register_device(
                            settings, identity(tenant, i), tls=False, broker=Mosquitto(settings)
                        )
                    )
                )
                for i in range(args.devices)
            ]
            for tenant in ("bench-c", "bench-b", "bench-r", "bench-lb", "bench-lr")
        }
        size = len(make_event(conns["bench-b"][0].identity, 0))
        lines.append(
            f"events: {size} B each (JSON GateEvent), {args.devices} devices, QoS 1;"
            f" Mosquitto 2.0.11, Kafka 4.1.2 (KRaft, 1 node), all on this machine"
        )
        print(lines[-1], flush=True)

        clients: dict[str, float] = {}
        if args.client_events:
            clients = phase_clients(settings, conns["bench-c"][0], args.client_events, tmp)
            for name, rate in clients.items():
                print(f"  clients: {name}: {rate:,.0f} msg/s", flush=True)

        per = args.events // args.devices
        n = per * args.devices
        sites = [c.identity.site for c in conns["bench-b"]]
        # -- drain: bridge
        creds = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
        for i in range(args.instances):
            scope = [f"bench-b/{s}" for j, s in enumerate(sites) if j % args.instances == i]
            bs = BridgeSettings(instance=f"bench-bench-b-{i}", scope=scope)
            ensure_bridge_session(settings.host, settings.mqtt_port, creds, bs)
        pub_s = prefill(conns["bench-b"], per, tmp)
        print(f"  queued {n} for the bridge in {pub_s:.1f}s ({n / pub_s:,.0f}/s)", flush=True)
        load_before = os.getloadavg()[0]
        watch = Watch(settings.kafka_bootstrap, TOPICS["raw"])
        bridges = start_bridges(env, args.instances, "bench-b", sites, tmp, settings)
        pids = [b.pid for b in bridges]
        spy = start_py_spy(pids[0], args.py_spy) if args.py_spy else None
        first, done, got, cpu0, cpu1 = watch.until(n, 600, lambda: cpu_s(pids))
        assert cpu0 is not None and cpu1 is not None
        bridge_rate = (got - 1) / max(done - first, 1e-6)
        per_event = {k: (cpu1[k] - cpu0[k]) / (got - 1) * 1e6 for k in cpu1}
        cpu_us = sum(per_event.values())
        cpu_parts = ", ".join(f"{k} {v:.1f}" for k, v in per_event.items())
        print(f"  bridge drain: {bridge_rate:,.0f} events/s ({args.instances} instance(s));"
              f" bridge CPU {cpu_us:.1f} µs per event ({cpu_parts});"
              f" load avg 1 min {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        stop(bridges)
        if spy is not None:
            spy.wait(60)
        # -- drain: raw baseline
        base_rate = float("nan")
        if not args.no_baseline:
            subprocess.run(baseline_argv(settings, "bench-r", None) + ["-E"], check=True)
            pub_s = prefill(conns["bench-r"], per, tmp)
            watch = Watch(settings.kafka_bootstrap, TOPICS["baseline"])
            base = start_baseline(settings, "bench-r", n)
            first, done, got, _, _ = watch.until(n, 600, lambda: None)
            base_rate = (got - 1) / max(done - first, 1e-6)
            print(f"  raw baseline drain (mosquitto_sub | kcat -P): {base_rate:,.0f} events/s",
                  flush=True)  # fmt: skip
            stop(base)
        load_mid = os.getloadavg()[0]
        if args.no_latency:
            return

        # -- latency at a fixed rate
        lb_sites = [c.identity.site for c in conns["bench-lb"]]
        bridges = start_bridges(env, args.instances, "bench-lb", lb_sites, tmp, settings)
        time.sleep(4)
        since = int(time.time() * 1000)
        sent = paced(conns["bench-lb"], args.rate, args.seconds)
        time.sleep(3)
        bridge_lat = latencies(settings.kafka_bootstrap, TOPICS["raw"], since)
        stop(bridges)
        subprocess.run(baseline_argv(settings, "bench-lr", None) + ["-E"], check=True)
        base = start_baseline(settings, "bench-lr", None)
        time.sleep(2)
        since = int(time.time() * 1000)
        sent_r = paced(conns["bench-lr"], args.rate, args.seconds)
        time.sleep(3)
        stop(base)
        base_lat = latencies(settings.kafka_bootstrap, TOPICS["baseline"], since)
        load_after = os.getloadavg()[0]

        rows = [
            "| path | drain events/s | p50 ms | p99 ms | records (latency phase) |",
            "|---|---|---|---|---|",
            f"| bridge, {args.instances} instance(s), at least once | {bridge_rate:,.0f} |"
            f" {pct(bridge_lat, 0.5):.0f} | {pct(bridge_lat, 0.99):.0f} |"
            f" {len(bridge_lat)}/{sent} |",
            f"| raw: mosquitto_sub \\| kcat -P (acks on receipt) | {base_rate:,.0f} |"
            f" {pct(base_lat, 0.5):.0f} | {pct(base_lat, 0.99):.0f} | {len(base_lat)}/{sent_r} |",
        ]
        ratio = bridge_rate / base_rate
        summary = [
            f"drain: {n} events queued in a persistent session, then drained; latency: live at"
            f" {args.rate:,.0f} events/s for {args.seconds:.0f}s, publish hand-off → Kafka"
            f" LogAppendTime (ms resolution). Bridge CPU per drained event: {cpu_us:.1f} µs"
            f" ({cpu_parts}).",
            "",
            *rows,
            "",
            f"bridge / raw = {ratio:.2f}; added latency p50 "
            f"{pct(bridge_lat, 0.5) - pct(base_lat, 0.5):+.0f} ms, p99 "
            f"{pct(bridge_lat, 0.99) - pct(base_lat, 0.99):+.0f} ms;"
            f" load avg 1 min: {load_before:.2f} before, {load_mid:.2f} after the drains,"
            f" {load_after:.2f} at the end",
        ]
        if clients:
            summary += [
                "",
                "| client side by side (same run) | rate |",
                "|---|---|",
                *(f"| {k} | {v:,.0f} msg/s |" for k, v in clients.items()),
            ]
        lines += summary
        print("\n".join(summary))
        if args.write_docs:
            write_docs(lines)
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


def start_py_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")
    # Raw (collapsed) stacks, one line per stack: grep-able; written when the bridge exits.
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                             "--output", out, "--nonblocking"])  # fmt: skip


def write_docs(lines: list[str]) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    block = "\n".join([START, "", *lines, "", END])
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Bridge\n\n" + block + "\n"
    DOCS.write_text(text)
    print(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
