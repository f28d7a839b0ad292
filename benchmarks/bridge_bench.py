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
              With --confirmations both (the default) the bridge drain runs twice
              in the same run, delivery confirmations to the devices off and on
              (FACEGATE_BRIDGE_CONFIRM_DELIVERY), each on its own devices.
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
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from _machine import (
    BenchStack,
    free_ports,
    machine_line,
    message_size_line,
    private_stack,
    require_tools,
    run,
)
from bridge_breakdown import (
    BrokerLogs,
    InflightPeak,
    LiveTail,
    breakdown_line,
    events_line,
    scrape_buckets,
)
from bridge_clients import phase_clients
from live_cpu import CpuShare, between, pidfile_pids, reaped_children_s, share_line

from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire import Decision, EventKind, GateEvent, encode_event, new_event_id
from edge_agent.wire.topics import DeviceIdentity, event_topic
from stream_processor.bridge.session import ensure_bridge_session
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.runtime.accounts import AccountBook
from stream_processor.runtime.devices import register_device
from stream_processor.runtime.kafka_acls import Grant, apply_acls
from stream_processor.runtime.kafka_auth import Role, confluent_auth, kafka_python_auth
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.topics import TopicSpec, ensure_topics
from stream_processor.stack.broker_config import replication_for
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.settings import StackSettings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- bridge-bench:start -->", "<!-- bridge-bench:end -->"
#: Debian tools the drain and latency phases run (installed if missing).
TOOLS = {"mosquitto_pub": "mosquitto-clients", "mosquitto_sub": "mosquitto-clients", "kcat": "kcat"}
KCAT_CONF = "kcat.conf"
TENANTS = ("bench-c", "bench-b", "bench-bo", "bench-r", "bench-lb", "bench-lr")
#: --confirmations mode -> the tenant whose devices that drain uses.
CONFIRM_TENANTS = {"on": "bench-b", "off": "bench-bo"}
TOPICS = {
    "raw": "bench.raw", "dlq": "bench.dlq", "acks": "bench.acks",
    "commands": "bench.commands", "baseline": "bench.baseline",
}  # fmt: skip


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
            consent_ref="cr1_" + "5e" * 16, reason="card_presented",
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

    def __init__(self, settings: StackSettings, topic: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self._c = Consumer({**confluent_auth(settings, Role.ADMIN),
                            "bootstrap.servers": settings.kafka_bootstrap,
                            "group.id": f"w-{time.time_ns()}"})  # fmt: skip
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
            raise SystemExit(f"Error: only {got}/{n} records arrived in {timeout_s:.0f}s")
        return first, done, got, at_first, at_done


def drain_rate(got: int, first: float, done: float) -> float:
    """Records per second between the first and the last seen; NaN when they landed
    between two polls of the watch (too few events to time: raise --events)."""
    if done - first < 0.1:
        return float("nan")
    return (got - 1) / (done - first)


def latencies(settings: StackSettings, topic: str, since_ms: int) -> list[float]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({**confluent_auth(settings, Role.ADMIN),
                  "bootstrap.servers": settings.kafka_bootstrap,
                  "group.id": f"l-{time.time_ns()}"})  # fmt: skip
    meta = c.list_topics(topic, timeout=10)
    parts = list(meta.topics[topic].partitions)
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    pos = dict.fromkeys(parts, 0)
    out: list[float] = []
    deadline = time.monotonic() + 120
    while any(pos[p] < ends[p] for p in parts) and time.monotonic() < deadline:
        for m in c.consume(10_000, 1.0):
            offset, value = m.offset(), m.value()
            if m.error() or offset is None or value is None:
                continue
            pos[m.partition()] = offset + 1
            occurred = json.loads(value)["occurred_at_ms"]
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
            raise SystemExit("Error: mosquitto_pub failed")
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


def kcat_config(settings: StackSettings, tmp: Path) -> Path:
    """kcat's librdkafka settings in a 0600 file (``-F``): the bridge's login stays off
    the command line, where any local user could read it in ``ps``."""
    # The same linger as the bridge's producer: both paths then batch alike, and a
    # difference in the tail is the path's, not the batching's.
    linger = BridgeSettings(instance="raw-baseline").linger_ms
    props = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": "true",
        "acks": "all",
        "linger.ms": str(linger),
        **confluent_auth(settings, Role.BRIDGE),
    }
    path = tmp / KCAT_CONF
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in props.items())
    return path


def kcat_env(tmp: Path) -> dict[str, str]:
    """kcat on the librdkafka confluent-kafka bundles, the bridge's own: Debian's 2.0.2
    fails SCRAM against Kafka 4 (it repeats the client nonce, which Kafka 4 refuses;
    fixed in librdkafka 2.6.1, kcat issue #462), and one library for both paths keeps
    the baseline a comparison of the paths, not of two librdkafka versions."""
    import confluent_kafka

    bundled = sorted((Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs")
                     .glob("librdkafka*.so*"))  # fmt: skip
    if not bundled:
        return dict(os.environ)
    libs = tmp / "kcat-lib"
    libs.mkdir(exist_ok=True)
    link = libs / "librdkafka.so.1"
    if not link.exists():
        link.symlink_to(bundled[0])
    return {**os.environ, "LD_LIBRARY_PATH": str(libs)}


def stop_baseline(procs: list[Any], tmp: Path) -> None:
    stop(procs)
    (tmp / KCAT_CONF).unlink(missing_ok=True)


def start_baseline(settings: StackSettings, tenant: str, count: int | None, tmp: Path) -> list[Any]:
    kcat = ["kcat", "-P", "-F", str(kcat_config(settings, tmp)), "-t", TOPICS["baseline"]]
    sub = subprocess.Popen(baseline_argv(settings, tenant, count), stdout=subprocess.PIPE)
    pipe = subprocess.Popen(kcat, stdin=sub.stdout, env=kcat_env(tmp))
    assert sub.stdout is not None
    sub.stdout.close()
    return [sub, pipe]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events drained per path")
    ap.add_argument("--devices", type=int, default=8, help="publishing devices (one site each)")
    ap.add_argument("--instances", type=int, default=1, help="bridge instances (exclusive)")
    ap.add_argument("--client-events", type=int, default=50_000, help="0 = skip clients phase")
    ap.add_argument("--rate", type=float, default=5000, help="latency phase: events/s")
    ap.add_argument("--seconds", type=float, default=15, help="latency phase: duration")
    ap.add_argument(
        "--confirmations", choices=("both", "on", "off"), default="both",
        help="bridge drain with delivery confirmations off and on (both: same run, off first)",
    )  # fmt: skip
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
    ap.add_argument(
        "--kafka-nodes", default="1",
        help="comma-separated Kafka cluster sizes, each run in turn in the same run"
        " (1,3: the single node against three nodes with RF 3 and min.insync.replicas=2)",
    )  # fmt: skip
    ap.add_argument(
        "--keep", action="store_true",
        help="keep each stack's state dir (brokers' logs) after the run, and print where",
    )  # fmt: skip
    ap.add_argument(
        "--kafka-auth", choices=("on", "off"), default="on",
        help="the stack's Kafka requires SASL/SCRAM logins and ACLs (on: as 'stack up' does)",
    )  # fmt: skip
    ap.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    global RANDOM_SUBJECTS
    RANDOM_SUBJECTS = args.random_subjects
    require_tools(TOOLS)
    lines: list[str] = [machine_line()]
    print(lines[0], flush=True)
    topics = {f"FACEGATE_TOPIC_{k.upper()}": v for k, v in TOPICS.items() if k != "baseline"}
    auth = "true" if args.kafka_auth == "on" else "false"
    env = {"FACEGATE_LOG_LEVEL": "WARNING", "FACEGATE_KAFKA_AUTH": auth, **topics}
    sizes = [int(n) for n in args.kafka_nodes.split(",")]
    drains: dict[int, Drained] = {}
    for nodes in sizes:
        drains[nodes] = run_on(args, env, nodes, lines)
    if len(sizes) > 1:
        lines.append(cluster_line(drains))
        print(lines[-1], flush=True)
    if args.write_docs and not args.no_latency:
        write_docs(lines)


def cluster_line(drains: dict[int, Drained]) -> str:
    """The drain rate on each cluster size, and against the single node."""
    one = drains.get(1)
    parts = [
        f"{n} node{'s' if n > 1 else ''} (RF {replication_for(n)[0]}): {d.rate:,.0f}/s"
        + (f" = {d.rate / one.rate:.2f}x" if one and n != 1 else "")
        for n, d in drains.items()
    ]
    return "- bridge drain by Kafka cluster size, same run: " + ", ".join(parts)


def run_on(args: argparse.Namespace, env: dict[str, str], nodes: int, lines: list[str]) -> Drained:
    """Every phase on a private stack whose Kafka has ``nodes`` nodes."""
    with private_stack("bridgebench", env, keep=args.keep, kafka_nodes=nodes) as st:
        print(f"kafka: {nodes} node(s), bootstrap {st.settings.kafka_bootstrap}", flush=True)
        create_topics(st.settings)
        tmp = st.state / "bench"
        tmp.mkdir()
        conns = {t: devices(st.settings, t, args.devices) for t in TENANTS}
        sample = [make_event(c.identity, s) for c in conns["bench-b"] for s in range(100)]
        lines.append(
            message_size_line(sample, "events (JSON GateEvent)") + f"; {args.devices} devices,"
            f" QoS 1; Mosquitto 2.0.11, Kafka 4.1.2 (KRaft, {nodes} node{'s' if nodes > 1 else ''}"
            f", RF {replication_for(nodes)[0]}), all on this machine"
        )
        print(lines[-1], flush=True)
        clients: dict[str, float] = {}
        if args.client_events:
            clients = phase_clients(st.settings, conns["bench-c"][0], args.client_events, tmp,
                                    prefill, make_event, TOPICS["baseline"])  # fmt: skip
            for name, rate in clients.items():
                print(f"  clients: {name}: {rate:,.0f} msg/s", flush=True)
        by_mode = {
            mode: drain_bridge(args, st, conns[CONFIRM_TENANTS[mode]], tmp, mode == "on")
            for mode in (("off", "on") if args.confirmations == "both" else (args.confirmations,))
        }
        drained = by_mode.get("on") or by_mode["off"]
        lines += confirmation_lines(by_mode)
        base_rate = float("nan") if args.no_baseline else drain_baseline(args, st, conns, tmp)
        load_mid = os.getloadavg()[0]
        if args.no_latency:
            return drained
        lat = measure_latency(args, st, conns, tmp)
        summary = summarise(args, drained, base_rate, lat, (load_mid, os.getloadavg()[0]), clients)
        lines += summary
        print("\n".join(summary))
        return drained


@dataclass(frozen=True)
class Drained:
    n: int
    rate: float
    cpu_us: float
    cpu_parts: str
    load_before: float


@dataclass(frozen=True)
class Latencies:
    bridge: list[float]
    bridge_sent: int
    raw: list[float]
    raw_sent: int
    #: The bridge's produce ack latency and append → live consumer, one line.
    breakdown: str


def create_topics(settings: StackSettings) -> None:
    appended = {"message.timestamp.type": "LogAppendTime"}
    rf = replication_for(settings.kafka_nodes)[0]
    ensure_topics(settings.kafka_bootstrap, replication=rf, specs=[
        TopicSpec(TOPICS["raw"], 6, appended), TopicSpec(TOPICS["baseline"], 6, appended),
        TopicSpec(TOPICS["dlq"], 1), TopicSpec(TOPICS["acks"], 1), TopicSpec(TOPICS["commands"], 1),
    ], auth=kafka_python_auth(settings, Role.ADMIN))  # fmt: skip
    if settings.kafka_auth:
        # The baseline and the client phase produce as the bridge, so they pay the same
        # login and authorization as the bridge does; the stack's ACL plan knows only
        # the pipeline's topics, not this one.
        apply_acls(settings, [Grant(Role.BRIDGE, op, "topic", TOPICS["baseline"])
                              for op in ("WRITE", "DESCRIBE")])  # fmt: skip


def devices(settings: StackSettings, tenant: str, n: int) -> list[DeviceConnection]:
    broker = Mosquitto(settings)
    return [
        DeviceConnection.load(
            Path(register_device(settings, identity(tenant, i), tls=False, broker=broker))
        )
        for i in range(n)
    ]


def drain_bridge(
    args: argparse.Namespace, st: BenchStack, conns: list[DeviceConnection], tmp: Path,
    confirm: bool = True,
) -> Drained:  # fmt: skip
    """N events queued in the bridges' sessions, then drained into Kafka."""
    settings = st.settings
    tenant = conns[0].identity.tenant
    per = args.events // args.devices
    n = per * args.devices
    sites = [c.identity.site for c in conns]
    creds = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
    for i in range(args.instances):
        scope = [f"{tenant}/{s}" for j, s in enumerate(sites) if j % args.instances == i]
        bs = BridgeSettings(instance=f"bench-{tenant}-{i}", scope=scope)
        ensure_bridge_session(settings.host, settings.mqtt_port, creds, bs)
    pub_s = prefill(conns, per, tmp)
    print(f"  queued {n} for the bridge in {pub_s:.1f}s ({n / pub_s:,.0f}/s)", flush=True)
    load_before = os.getloadavg()[0]
    watch = Watch(settings, TOPICS["raw"])
    env = {**st.env, "FACEGATE_BRIDGE_CONFIRM_DELIVERY": "true" if confirm else "false"}
    bridges = start_bridges(env, args.instances, tenant, sites, tmp, settings)
    pids = [b.pid for b in bridges]
    spy = start_py_spy(pids[0], args.py_spy) if args.py_spy else None
    share = live_cpu(st, pids)
    first, done, got, at0, at1 = watch.until(n, 600, lambda: (cpu_s(pids), share.snapshot()))
    assert at0 is not None and at1 is not None
    (cpu0, snap0), (cpu1, snap1) = at0, at1
    # From the first record to the last, as the rate: the bridge's start is not in it.
    print("  " + share_line(between(snap0, snap1), phase="drain"), flush=True)
    rate = drain_rate(got, first, done)
    per_event = {k: (cpu1[k] - cpu0[k]) / (got - 1) * 1e6 for k in cpu1}
    cpu_us = sum(per_event.values())
    parts = ", ".join(f"{k} {v:.1f}" for k, v in per_event.items())
    print(f"  bridge drain, confirmations {'on' if confirm else 'off'}: {rate:,.0f} events/s"
          f" ({args.instances} instance(s));"
          f" bridge CPU {cpu_us:.1f} µs per event ({parts});"
          f" load avg 1 min {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    stop(bridges)
    if spy is not None:
        spy.wait(60)
    return Drained(n, rate, cpu_us, parts, load_before)


def drain_baseline(
    args: argparse.Namespace, st: BenchStack, conns: dict[str, list[DeviceConnection]], tmp: Path
) -> float:
    """The same N drained by ``mosquitto_sub | kcat -P`` (acked on receipt)."""
    settings = st.settings
    per = args.events // args.devices
    n = per * args.devices
    subprocess.run(baseline_argv(settings, "bench-r", None) + ["-E"], check=True)
    prefill(conns["bench-r"], per, tmp)
    watch = Watch(settings, TOPICS["baseline"])
    base = start_baseline(settings, "bench-r", n, tmp)
    first, done, got, _, _ = watch.until(n, 600, lambda: None)
    rate = drain_rate(got, first, done)
    print(f"  raw baseline drain (mosquitto_sub | kcat -P): {rate:,.0f} events/s", flush=True)
    stop_baseline(base, tmp)
    return rate


def buckets_of(port: int, settings: StackSettings) -> list[tuple[float, float]]:
    """The bridge's produce latency histogram (none when it exports no metrics)."""
    return scrape_buckets(port, settings.host) if port else []


def measure_latency(
    args: argparse.Namespace, st: BenchStack, conns: dict[str, list[DeviceConnection]], tmp: Path
) -> Latencies:
    """Live publishing at ``--rate`` through the bridge, then through the raw path."""
    settings = st.settings
    lb_sites = [c.identity.site for c in conns["bench-lb"]]
    # One bridge's histogram is the breakdown; several would need a port each.
    port = free_ports(1)[0] if args.instances == 1 else 0
    env = {**st.env, "FACEGATE_BRIDGE_METRICS_PORT": str(port)}
    bridges = start_bridges(env, args.instances, "bench-lb", lb_sites, tmp, settings)
    time.sleep(4)
    tail = LiveTail(settings.kafka_bootstrap, TOPICS["raw"]).start()
    logs, peak = BrokerLogs(st.state), InflightPeak(port, settings.host).start()
    cpu = live_cpu(st, [b.pid for b in bridges]).start()
    since = int(time.time() * 1000)
    sent = paced(conns["bench-lb"], args.rate, args.seconds)
    time.sleep(3)
    shares = cpu.stop()
    lags = tail.stop()
    breakdown = (
        f"{breakdown_line(buckets_of(port, settings), lags)}; bridge in flight at most"
        f" {peak.stop():.0f}; {events_line(logs.counts())}\n\n{share_line(shares, phase='live')}"
    )
    bridge_lat = latencies(settings, TOPICS["raw"], since)
    stop(bridges)
    subprocess.run(baseline_argv(settings, "bench-lr", None) + ["-E"], check=True)
    base = start_baseline(settings, "bench-lr", None, tmp)
    time.sleep(2)
    since = int(time.time() * 1000)
    sent_r = paced(conns["bench-lr"], args.rate, args.seconds)
    time.sleep(3)
    stop_baseline(base, tmp)
    raw_lat = latencies(settings, TOPICS["baseline"], since)
    return Latencies(bridge_lat, sent, raw_lat, sent_r, breakdown)


def live_cpu(st: BenchStack, bridge_pids: list[int]) -> CpuShare:
    """Per-process CPU of a phase: the Kafka nodes, Mosquitto, the bridge
    (librdkafka's threads apart), the publishers and this process (pacing, the live
    consumer, the metric scrapes)."""
    return CpuShare(
        groups={
            "kafka nodes": lambda: pidfile_pids(st.state.glob("kafka*/kafka.pid")),
            "mosquitto": lambda: pidfile_pids([st.state / "mosquitto" / "mosquitto.pid"]),
            "bridge": lambda: bridge_pids,
            "benchmark process": lambda: [os.getpid()],
        },
        split=frozenset({"bridge"}),
        counters={"publishers (mosquitto_pub)": reaped_children_s},
    )


def confirmation_lines(by_mode: dict[str, Drained]) -> list[str]:
    """The cost of delivery confirmations: drain rate and bridge CPU, off against on."""
    if set(by_mode) != {"on", "off"}:
        return []
    on, off = by_mode["on"], by_mode["off"]
    line = (
        f"delivery confirmations (same run, off then on): drain {off.rate:,.0f} -> "
        f"{on.rate:,.0f} events/s ({on.rate / off.rate:.2f}x); bridge CPU {off.cpu_us:.1f} -> "
        f"{on.cpu_us:.1f} µs per event; load avg 1 min before each: {off.load_before:.2f},"
        f" {on.load_before:.2f}"
    )
    print(line, flush=True)
    return [line]


def summarise(
    args: argparse.Namespace, d: Drained, base_rate: float, lat: Latencies,
    loads: tuple[float, float], clients: dict[str, float],
) -> list[str]:  # fmt: skip
    b, r = lat.bridge, lat.raw
    rows = [
        "| path | drain events/s | p50 ms | p99 ms | records (latency phase) |",
        "|---|---|---|---|---|",
        f"| bridge, {args.instances} instance(s), at least once | {d.rate:,.0f} |"
        f" {pct(b, 0.5):.0f} | {pct(b, 0.99):.0f} | {len(b)}/{lat.bridge_sent} |",
        f"| raw: mosquitto_sub \\| kcat -P (acks on receipt) | {base_rate:,.0f} |"
        f" {pct(r, 0.5):.0f} | {pct(r, 0.99):.0f} | {len(r)}/{lat.raw_sent} |",
    ]
    summary = [
        f"drain: {d.n} events queued in a persistent session, then drained; latency: live at"
        f" {args.rate:,.0f} events/s for {args.seconds:.0f}s, publish hand-off → Kafka"
        f" LogAppendTime (ms resolution). Bridge CPU per drained event: {d.cpu_us:.1f} µs"
        f" ({d.cpu_parts}).",
        "",
        *rows,
        "",
        f"bridge / raw = {d.rate / base_rate:.2f}; added latency p50 "
        f"{pct(b, 0.5) - pct(r, 0.5):+.0f} ms, p99 {pct(b, 0.99) - pct(r, 0.99):+.0f} ms;"
        f" load avg 1 min: {d.load_before:.2f} before, {loads[0]:.2f} after the drains,"
        f" {loads[1]:.2f} at the end",
        "",
        lat.breakdown,
    ]
    if clients:
        summary += [
            "",
            "| client side by side (same run) | rate |",
            "|---|---|",
            *(f"| {k} | {v:,.0f} msg/s |" for k, v in clients.items()),
        ]
    return summary


def start_py_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("Error: --py-spy needs py-spy: .venv/bin/pip install py-spy")
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
    run(main)
