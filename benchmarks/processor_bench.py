"""Processor benchmark: Faust worker throughput on a pre-loaded raw topic (SQLite and
PostgreSQL), and end-to-end latency MQTT publish → stored row at a steady rate.

Starts a private stack (Mosquitto, Kafka, PostgreSQL) on free ports under a
temporary state directory, applies a policy, grants consents, pre-loads the raw
topic, then runs ``facegate processor worker`` (the CLI, as in production) once
per store with its own consumer group and times how fast it decides every event.

    .venv/bin/python benchmarks/processor_bench.py --events 1000000 --stores sqlite,postgres
    .venv/bin/python benchmarks/processor_bench.py --events 200000 --stores sqlite --profile
    .venv/bin/python benchmarks/processor_bench.py --events 0 --latency-rate 200 --latency-s 30

Throughput counts *decided* events (stored + discarded with a reason), read from
the store's per-minute aggregates, from the first decided batch to the last (so
worker start-up and table recovery are excluded).
"""

from __future__ import annotations

import argparse
import os
import pstats
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _machine import (
    BenchStack,
    free_ports,
    load_line,
    machine_line,
    message_size_line,
    private_stack,
    run,
)
from processor_report import Drain, Live, SizeRun, nodes_label, parse_args, table_lines

from edge_agent.pseudonym import SiteSecret, pseudonym
from edge_agent.wire import (
    Decision,
    EventKind,
    GateEvent,
    ScoreBand,
    encode_event,
    new_event_id,
)
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.policy.document import PolicyDocument
from stream_processor.policy.keys import history_key, policy_key
from stream_processor.policy.retention import PolicyVersion
from stream_processor.processor.demo_seed import DEMO_POLICY
from stream_processor.runtime.kafka_auth import Role, confluent_auth, kafka_python_auth
from stream_processor.runtime.ledger_client import write_records
from stream_processor.runtime.settings import Topics
from stream_processor.stack.settings import StackSettings

FACEGATE = str(Path(sys.executable).with_name("facegate"))
TENANT = "bench"
KINDS = (
    (EventKind.FACE_MATCH, 55),
    (EventKind.KEY_CARD, 25),
    (EventKind.PIN, 8),
    (EventKind.UNKNOWN_FACE, 8),
    (EventKind.MANUAL_OPEN, 4),
)


def secret_of(site: str) -> SiteSecret:
    return SiteSecret(TENANT, site, (b"bench-secret-" + site.encode()).ljust(32, b"."))


def make_events(n: int, sites: int, gates: int, residents: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    subjects = {
        f"site-{s}": [
            pseudonym(secret_of(f"site-{s}"), f"resident-{i:05d}") for i in range(residents)
        ]
        for s in range(sites)
    }
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        site = f"site-{i % sites}"
        kind = rng.choices(kinds, weights)[0]
        subj = (
            rng.choice(subjects[site])
            if kind in (EventKind.FACE_MATCH, EventKind.KEY_CARD, EventKind.PIN)
            else None
        )  # noqa: E501
        face = kind in (EventKind.FACE_MATCH, EventKind.UNKNOWN_FACE)
        ev = GateEvent(
            schema_version=1, event_id=new_event_id(now), seq=i, tenant=TENANT, site=site,
            gate=f"gate-{rng.randrange(gates)}", device="cam-1", kind=kind,
            decision=Decision.DENIED if kind is EventKind.UNKNOWN_FACE else Decision.GRANTED,
            # a backlog of live traffic: event times spread over the last minute
            purpose="access_control", occurred_at_ms=now - 60_000 + i * 60_000 // n,
            subject=subj, score_band=ScoreBand.HIGH if face else None,
            model="bench" if face else None,
            reason="no_match" if kind is EventKind.UNKNOWN_FACE else None,
        )  # fmt: skip
        out.append(encode_event(ev))
    return out


def preload(settings: StackSettings, topic: str, values: list[bytes], sites: int) -> float:
    from confluent_kafka import Producer

    p = Producer(
        {
            **confluent_auth(settings, Role.BRIDGE),  # the bridge writes raw events
            "bootstrap.servers": settings.kafka_bootstrap,
            "linger.ms": 20,
            "acks": "all",
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 2_000_000,
            "compression.type": "none",
        }
    )  # fmt: skip  (aiokafka lacks lz4 here)
    t0 = time.monotonic()
    for i, v in enumerate(values):
        while True:
            try:
                p.produce(topic, value=v, key=f"{TENANT}/site-{i % sites}".encode())
                break
            except BufferError:
                p.poll(0.05)
        if i % 10000 == 0:
            p.poll(0)
    p.flush(120)
    return time.monotonic() - t0


def seed(
    settings: StackSettings, topics: Topics, sites: int, residents: int, consenting: float
) -> None:
    bootstrap, office = settings.kafka_bootstrap, kafka_python_auth(settings, Role.OFFICE)
    doc = PolicyDocument.model_validate({**DEMO_POLICY, "tenant": TENANT})
    record = PolicyVersion(
        tenant=TENANT, version=1, applied_at_ms=int(time.time() * 1000), applied_by="bench",
        document=doc.model_dump(mode="json"),
    ).encode()  # fmt: skip
    write_records(
        bootstrap,
        topics.policies,
        [(history_key(TENANT, 1), record), (policy_key(TENANT), record)],
        auth=office,
    )
    now = int(time.time() * 1000)
    grants: list[tuple[bytes, bytes | None]] = []
    for s in range(sites):
        site = f"site-{s}"
        for i in range(int(residents * consenting)):
            r = ConsentRecord(
                tenant=TENANT, site=site, subject=pseudonym(secret_of(site), f"resident-{i:05d}"),
                purpose="access_control", status=ConsentStatus.GRANTED, given_by=GivenBy.SELF,
                evidence_ref=f"form-{i}", at_ms=now,
            )  # fmt: skip
            grants.append((r.key, r.encode()))
    write_records(bootstrap, topics.consent, grants, auth=office)


class Counter:
    """Decided events so far, from the store's aggregates (cheap to query)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def decided(self) -> int:
        sql = "SELECT coalesce(sum(n), 0) FROM aggregates_minute"
        try:
            if self.env["FACEGATE_STORE"] == "sqlite":
                import sqlite3

                db = sqlite3.connect(
                    f"file:{self.env['FACEGATE_PROCESSOR_STORE_PATH']}?mode=ro", uri=True
                )  # noqa: E501
                try:
                    return int(db.execute(sql).fetchone()[0])
                finally:
                    db.close()
            import psycopg

            with psycopg.connect(self.env["BENCH_PG_DSN"]) as conn:
                row = conn.execute(sql).fetchone()
                return int(row[0]) if row else 0
        except Exception:  # noqa: BLE001 - not created yet
            return 0

    def stored(self) -> int:
        try:
            if self.env["FACEGATE_STORE"] == "sqlite":
                import sqlite3

                db = sqlite3.connect(self.env["FACEGATE_PROCESSOR_STORE_PATH"])
                try:
                    return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
                finally:
                    db.close()
            import psycopg

            with psycopg.connect(self.env["BENCH_PG_DSN"]) as conn:
                row = conn.execute("SELECT count(*) FROM events").fetchone()
                return int(row[0]) if row else 0
        except Exception:  # noqa: BLE001
            return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (the worker's
    store process), all threads, so far."""
    total = 0.0
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            pending += [int(c) for c in task.read_text().split()]
    return total


def run_worker(env: dict[str, str], n: int, log: Path, profile: Path | None) -> dict[str, Any]:
    argv = [FACEGATE, "processor", "worker"]
    if profile is not None:
        argv = [sys.executable, "-m", "cProfile", "-o", str(profile), *argv]
    counter = Counter(env)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT)
    t_start = time.monotonic()
    first = None
    cpu_first = cpu_last = 0.0
    samples: list[tuple[float, int]] = []
    try:
        while True:
            got = counter.decided()
            now = time.monotonic()
            if got and first is None:
                first = (now, got)
                cpu_first = cpu_seconds(proc.pid)
            if got >= n:
                cpu_last = cpu_seconds(proc.pid)
            samples.append((now, got))
            if got >= n:
                break
            if proc.poll() is not None:
                raise SystemExit(f"worker exited early; see {log}")
            if now - t_start > 3600:
                raise SystemExit("worker too slow: gave up after an hour")
            # The drain is timed between samples: a short one (a small backlog, three
            # nodes) must span several. One read of the aggregates costs ~1 ms.
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert first is not None
    elapsed = samples[-1][0] - first[0]
    decided = samples[-1][1] - first[1]
    return {
        "startup_s": first[0] - t_start,
        "elapsed_s": elapsed,
        "rate": decided / elapsed if elapsed > 0 else float("nan"),
        "cpu_s": cpu_last - cpu_first,
        "rate_per_cpu_s": decided / (cpu_last - cpu_first) if cpu_last > cpu_first else 0.0,
        "stored": counter.stored(),
    }


def print_profile(path: Path, top: int = 25) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def latency(stack: StackSettings, env: dict[str, str], rate: float, seconds: float,
            tmp: Path) -> dict[str, float]:  # fmt: skip
    """Publish at ``rate``/s over MQTT as a registered device; measure stored_at − published."""
    import sqlite3

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge_agent.uplink.settings import DeviceConnection
    from edge_agent.wire.topics import DeviceIdentity, event_topic
    from stream_processor.runtime.devices import register_device
    from stream_processor.stack.mosquitto import Mosquitto

    ident = DeviceIdentity(TENANT, "site-0", "gate-lat", "cam-1")
    conn = DeviceConnection.load(
        Path(register_device(stack, ident, tls=False, broker=Mosquitto(stack)))
    )
    procs = []
    metrics_port = free_ports(1)[0]
    wenv = {**env, "FACEGATE_PROCESSOR_METRICS_PORT": str(metrics_port)}
    for name, argv, penv in (("bridge", ["bridge", "run"], env),
                             ("lat-worker", ["processor", "worker"], wenv)):  # fmt: skip
        fh = open(tmp / f"{name}.log", "ab")  # noqa: SIM115
        procs.append(
            subprocess.Popen([FACEGATE, *argv], env=penv, stdout=fh, stderr=subprocess.STDOUT)
        )
    time.sleep(8)  # both connected and assigned
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ident.username,
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.username_pw_set(conn.mqtt.username, conn.mqtt.password.get_secret_value())
    client.connect(conn.mqtt.host, conn.mqtt.port)
    client.loop_start()
    topic = event_topic(ident)
    n = int(rate * seconds)
    published: dict[str, int] = {}
    t0 = time.monotonic()
    for i in range(n):
        target = t0 + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = int(time.time() * 1000)
        ev = GateEvent(schema_version=1, event_id=new_event_id(now), seq=i, tenant=TENANT,
                       site="site-0", gate="gate-lat", device="cam-1", kind=EventKind.KEY_CARD,
                       decision=Decision.GRANTED, purpose="access_control", occurred_at_ms=now,
                       subject=pseudonym(secret_of("site-0"), "resident-00001"))  # fmt: skip
        published[ev.event_id] = now
        client.publish(topic, encode_event(ev), qos=1)
    deadline = time.monotonic() + 120
    db_path = env["FACEGATE_PROCESSOR_STORE_PATH"]
    rows: list[tuple[str, int]] = []
    while time.monotonic() < deadline:
        db = sqlite3.connect(db_path)
        rows = db.execute(
            "SELECT event_id, stored_at_ms FROM events WHERE gate = 'gate-lat'"
        ).fetchall()
        db.close()
        if len(rows) >= n:
            break
        time.sleep(0.5)
    client.loop_stop()
    client.disconnect()
    print(worker_breakdown(metrics_port), flush=True)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    lat = sorted(stored - published[eid] for eid, stored in rows if eid in published)
    if not lat:
        raise SystemExit("no latency samples")

    def pct(q: float) -> float:
        return float(lat[min(len(lat) - 1, int(q * len(lat)))])

    return {"n": len(lat), "sent": n, "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
            "max": float(lat[-1])}  # fmt: skip


def worker_breakdown(port: int) -> str:
    """Where the latency worker's time went, from its metrics: batches, and the ledger
    gate's looks (end offsets read before a batch) and waits (a view behind)."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:  # noqa: S310
        text = r.read().decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    v = {s.name: s.value for s in samples if not s.labels}
    # Samples of the histograms' 0.1 s bucket: the mean hides a few slow ones.
    fast = {s.name: s.value for s in samples if s.labels == {"le": "0.1"}}

    def line(name: str, what: str) -> str:
        n, total = v.get(f"{name}_count", 0.0), v.get(f"{name}_sum", 0.0)
        mean = 1000 * total / n if n else 0.0
        slow = n - fast.get(f"{name}_bucket", n)
        return f"{what} {n:.0f} (mean {mean:.1f} ms, {slow:.0f} over 100 ms, total {total:.1f} s)"

    return "[latency] worker: " + "; ".join((
        line("facegate_processor_batch_seconds", "batches decided and stored"),
        line("facegate_processor_ledger_look_seconds", "ledger gate looks"),
        line("facegate_processor_ledger_wait_seconds", "gate waits for a lagging view"),
    ))  # fmt: skip


def main() -> None:
    args = parse_args(description=__doc__)
    machine = machine_line()
    print(machine)
    for auth in {"off": [False], "on": [True], "both": [False, True]}[args.kafka_auth]:
        print(f"--- Kafka authentication {'on' if auth else 'off'}", flush=True)
        load_start = load_line()
        runs: list[SizeRun] = []
        sizes: list[str] = []
        for nodes in args.kafka_nodes:
            print(f"--- Kafka: {nodes_label(nodes)}", flush=True)
            runs.append(bench(args, auth, nodes, sizes))
        event_size = sizes[0] if sizes else "events: none pre-loaded"
        lines = table_lines(runs, machine, event_size, load_start, load_line(), auth)
        print("\n".join(["", *lines, ""]), flush=True)


def bench(args: argparse.Namespace, auth: bool, nodes: int, sizes: list[str]) -> SizeRun:
    """Every phase on a private stack whose Kafka has ``nodes`` nodes (the stack gives its
    topics RF 3 and min.insync.replicas=2 from three nodes up); appends the pre-loaded
    events' size line to ``sizes``."""
    stores: list[str] = args.stores
    env = {
        "FACEGATE_TOPIC_RAW_PARTITIONS": str(args.partitions),
        "FACEGATE_PROCESSOR_BATCH_SIZE": str(args.batch_size),
        "FACEGATE_STORE": "postgres" if "postgres" in stores else "sqlite",
        "FACEGATE_KAFKA_AUTH": str(auth).lower(),
        # The workers' app ids (bench-<store>..., bench-latency) share this ACL prefix.
        "FACEGATE_PROCESSOR_APP_ID": "bench",
    }
    drains: list[Drain] = []
    live = None
    with private_stack("pbench", env, keep=args.keep, kafka_nodes=nodes) as st:
        topics = Topics()
        seed(st.settings, topics, args.sites, args.residents, args.consenting)
        if args.events:
            sizes.append(preload_events(args, st.settings, topics))
            for store in stores:
                drains += throughput(args, st, store)
        if args.latency_rate > 0:
            live = steady_latency(args, st, topics)
    return SizeRun(nodes, drains, live)


def preload_events(args: argparse.Namespace, settings: StackSettings, topics: Topics) -> str:
    """Generates and pre-loads the backlog; returns the events' size line."""
    t = time.monotonic()
    values = make_events(args.events, args.sites, args.gates, args.residents)
    size = message_size_line(values, "events (JSON GateEvent)")
    print(f"generated {len(values)} events in {time.monotonic() - t:.1f}s; {size}")
    secs = preload(settings, topics.raw, values, args.sites)
    print(f"pre-loaded {topics.raw} ({args.partitions} partitions) in {secs:.1f}s "
          f"({len(values) / secs:,.0f}/s)")  # fmt: skip
    return size


def throughput(args: argparse.Namespace, st: BenchStack, store: str) -> list[Drain]:
    """One worker per setting, each with its own consumer group and store, decides every
    pre-loaded event (SQLite: ``--secure-delete both`` runs it off, then on)."""
    settings = ["off", "on"] if args.secure_delete == "both" else [args.secure_delete]
    return [_throughput(args, st, store, secure)
            for secure in (settings if store == "sqlite" else ["-"])]  # fmt: skip


def _throughput(args: argparse.Namespace, st: BenchStack, store: str, secure: str) -> Drain:
    tag = store if secure == "-" else f"{store}-secure-delete-{secure}"
    wenv = {**st.env, "FACEGATE_STORE": store, "FACEGATE_PROCESSOR_APP_ID": f"bench-{tag}",
            "FACEGATE_PROCESSOR_STORE_PATH": str(st.state / f"{tag}.sqlite"),
            "FACEGATE_SQLITE_SECURE_DELETE": "false" if secure == "off" else "true"}  # fmt: skip
    if store == "postgres":
        from stream_processor.stack.postgres import Postgres

        wenv["BENCH_PG_DSN"] = Postgres(st.settings).dsn()
    prof = st.state / f"{tag}.prof" if args.profile else None
    r = run_worker(wenv, args.events, st.state / f"worker-{tag}.log", prof)
    print(f"[{tag}] {args.events:,} events decided in {r['elapsed_s']:.1f}s → "
          f"{r['rate']:,.0f} events/s (one worker, batch {args.batch_size}); "
          f"{r['stored']:,} rows stored; start-up {r['startup_s']:.1f}s; worker CPU "
          f"{r['cpu_s']:.1f}s → {r['rate_per_cpu_s']:,.0f} events per CPU-second; {load_line()}"
          )  # fmt: skip
    if prof is not None:
        print_profile(prof)
    return Drain(tag, r["rate"], r["rate_per_cpu_s"])


def steady_latency(args: argparse.Namespace, st: BenchStack, topics: Topics) -> Live:
    lenv = {**st.env, "FACEGATE_STORE": "sqlite", "FACEGATE_PROCESSOR_APP_ID": "bench-latency",
            "FACEGATE_PROCESSOR_STORE_PATH": str(st.state / "latency.sqlite"),
            "FACEGATE_PROCESSOR_BATCH_WITHIN_S": "0.05"}  # fmt: skip
    if args.events:
        # the latency worker must not first chew through the pre-loaded backlog
        lenv["FACEGATE_TOPIC_RAW"] = topics.raw  # same topic; offsets reset below
        _skip_backlog(st.settings, topics.raw, "bench-latency.raw")
    r2 = latency(st.settings, lenv, args.latency_rate, args.latency_s, st.state)
    print(f"[latency] MQTT publish → stored row (SQLite), {args.latency_rate:.0f}/s for "
          f"{args.latency_s:.0f}s: {r2['n']}/{r2['sent']} rows; p50 {r2['p50']:.0f} ms, "
          f"p95 {r2['p95']:.0f} ms, p99 {r2['p99']:.0f} ms, "
          f"max {r2['max']:.0f} ms; {load_line()}")  # fmt: skip
    return Live(args.latency_rate, int(r2["n"]), int(r2["sent"]), r2["p50"], r2["p99"])


def _skip_backlog(settings: StackSettings, topic: str, group: str) -> None:
    """Commit the latency group's offsets at the end of the pre-loaded backlog."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    c = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False,
        **kafka_python_auth(settings, Role.PROCESSOR),  # the group is the latency worker's
    )  # fmt: skip
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        ends = c.end_offsets(tps)
        c.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in ends.items()})
    finally:
        c.close()


if __name__ == "__main__":
    run(main)
