"""Soak: the whole pipeline for a long run at a steady rate, with faults inside it;
afterwards exactly-once is checked from the store and memory must stay flat.

A private stack on free ports (never a running demo's): Mosquitto, Kafka (one KRaft
node), the store (SQLite, or PostgreSQL with ``--store postgres``), the bridge, the
processor worker(s), the erasure worker, the web app and Prometheus scraping them.
The simulator (``edge_agent.simulate``, its own process) publishes at ``--rate``
through real device accounts and keeps every event until the bridge confirms it
durable. Faults at their scheduled times (``--faults``, logged with timestamps):

  worker     the processor worker: SIGTERM, then started again
  bridge     the bridge: SIGTERM, then started again
  mosquitto  kill -9 Mosquitto (autosave every 30 s), then start it again
  kafka      a controlled stop of the Kafka node, then start it again

Every ``--sample-s`` seconds: RSS of every process (each with its children),
stored rows (the store's own per-minute counts, cheap at any size), the processor
group's lag on the raw topic, the load average. At the end: the load stops, the
pipeline drains (lag 0, counts steady), and the store is checked per device: rows
against what was published and confirmed, duplicates by (device, seq) and by event
id, seqs never published; the dead-letter topic's size. Memory, judged on each
process's anonymous pages (RssAnon; the plot shows RSS): a linear fit over the second
half with one intercept per lifetime and per stretch between faults (each lifetime's
first ``--warmup-s`` and each fault's first minute left out), in MiB/hour, against a
bound (``--flat-mib-h`` or ``--flat-share-h`` of its memory); and the steps at faults,
summed per lifetime, against a stated bound (Mosquitto: its configured queue limits,
``soak_report.mosquitto_step_mib``; others: one hour of the allowed growth).

Output: a summary, ``docs/img/soak-<store>[-<tag>].json`` and ``.png``
(RSS per process and stored rows/s over time, faults marked). Exit 1 when anything
was lost, duplicated or dead-lettered, or a process's memory was not flat.

    .venv/bin/python benchmarks/soak.py --rate-from docs/img/pipeline_bench.json  # the hour
    .venv/bin/python benchmarks/soak.py --rate 1000 --duration 300  # short proof
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _machine import BenchStack, load_line, machine_line, private_stack, run
from soak_check import KafkaProbe, StoreView, verdict
from soak_faults import FaultRunner, parse_schedule
from soak_load import LoadRun, expected_per_device
from soak_report import Outcome, print_summary, write
from soak_series import Series
from soak_stack import SoakSystem, metrics_env

from stream_processor.errors import StackError

IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
TENANT = "demo"
#: The processor's consumer group on the raw topic (its app id + ".raw").
PROCESSOR_GROUP = "facegate-processor.raw"
#: Bytes each event costs on disk for the run, with a margin: measured ~800 (the
#: SQLite row and its indexes ~440, the raw topic ~340; the WAL and Mosquitto's file
#: stay bounded); a PostgreSQL row with its tuple header and indexes takes more. A run
#: that cannot fit is refused before it starts.
DISK_PER_EVENT = {"sqlite": 1000, "postgres": 1600}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    rate = ap.add_mutually_exclusive_group(required=True)
    rate.add_argument("--rate", type=float, help="events/s offered")
    rate.add_argument("--rate-from", type=Path, metavar="JSON",
                      help="half the saturation rate pipeline_bench.py measured for --store"
                           " (pipeline_bench.json: summary.<store>.soak_rate)")  # fmt: skip
    ap.add_argument("--duration", type=float, default=3600.0, help="seconds of load")
    ap.add_argument(
        "--faults",
        default="default",
        help="KIND@SECONDS,... (worker, bridge, mosquitto, kafka), 'default'"
        " (15/35/55/75 %% of the run) or 'none'",
    )
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        choices=(1, 2, 3, 4),
        help="processor workers (the worker fault restarts the first)",
    )
    ap.add_argument("--sites", type=int, default=10)
    ap.add_argument("--devices-per-site", type=int, default=4)
    ap.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    ap.add_argument(
        "--drain-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for the pipeline to drain after the load",
    )
    ap.add_argument(
        "--warmup-s",
        type=float,
        default=120.0,
        help="seconds after each start of a process left out of its memory fit",
    )
    ap.add_argument(
        "--flat-mib-h",
        type=float,
        default=20.0,
        help="RSS growth per hour that still counts as flat (MiB/h) ...",
    )
    ap.add_argument(
        "--flat-share-h",
        type=float,
        default=0.05,
        help="... or this share of the process's RSS per hour, if larger",
    )
    ap.add_argument("--out", type=Path, default=IMG, help="folder for the JSON and the PNG")
    ap.add_argument("--keep", action="store_true",
                    help="keep the state folder (store, logs) for a post-mortem")  # fmt: skip
    ap.add_argument("--tag", default="", help="suffix of the output names: soak-<store>[-TAG]")
    args = ap.parse_args(argv)
    if args.rate_from is not None:
        args.rate = soak_rate_from(args.rate_from, args.store, ap)
    if args.rate <= 0 or args.duration <= 0 or args.sample_s <= 0:
        ap.error("--rate, --duration and --sample-s must be positive")
    if args.sample_s > 10 or args.sample_s < 1:
        ap.error("--sample-s must be between 1 and 10 seconds")
    if not re.fullmatch(r"[a-z0-9-]{0,32}", args.tag):
        ap.error("--tag: at most 32 of a-z, 0-9 and -")
    try:
        args.schedule = parse_schedule(args.faults, args.duration)
    except argparse.ArgumentTypeError as exc:
        ap.error(str(exc))
    return args


def soak_rate_from(path: Path, store: str, ap: argparse.ArgumentParser) -> float:
    try:
        rate = json.loads(path.read_text())["summary"][store]["soak_rate"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        ap.error(f"--rate-from {path}: no summary.{store}.soak_rate ({type(exc).__name__}: {exc})")
    if not isinstance(rate, int | float) or rate <= 0:
        ap.error(f"--rate-from {path}: summary.{store}.soak_rate is {rate!r}, not a rate")
    return round(float(rate))


def check_disk(rate: float, duration_s: float, store: str) -> None:
    need = rate * duration_s * DISK_PER_EVENT[store]
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if need > 0.9 * free:
        raise StackError(
            f"the run needs about {need / 2**30:.1f} GiB in {tempfile.gettempdir()}"
            f" ({rate:g}/s x {duration_s:g} s), only {free / 2**30:.1f} GiB are free"
        )


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the finally blocks stop the processes and the stack


def main() -> None:
    args = parse_args()
    # SIGTERM (and SIGINT, which a shell ignores in a background job) stops the run
    # cleanly: no broker or process is left running.
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _terminated)
    print(machine_line(), flush=True)
    check_disk(args.rate, args.duration, args.store)
    env = {"FACEGATE_LOG_LEVEL": "WARNING", "FACEGATE_STORE": args.store,
           **metrics_env(args.workers)}  # fmt: skip
    with private_stack(f"soak-{args.store}", env, keep=args.keep) as st:
        result = soak(st, args)
    print_summary(result, args.out)
    if not result["ok"]:
        raise SystemExit(1)


def soak(st: BenchStack, args: argparse.Namespace) -> dict[str, Any]:
    from stream_processor.runtime.settings import Topics
    from stream_processor.stack.monitoring.prometheus import Prometheus

    topics = Topics()
    kafka = KafkaProbe(st.settings, topics.raw, topics.dlq, PROCESSOR_GROUP)
    system = SoakSystem(st, args.workers)
    load = LoadRun(st, args)
    view = store_view(st, args.store)
    series = Series(lambda: {**system.pids(), "simulator": load.pid},
                    lambda: view.stored_by_aggregates(TENANT), kafka.lag)  # fmt: skip
    faults = FaultRunner(args.schedule, system.fault_actions(), log=log_line)
    try:
        Prometheus(st.state).up()
        # Consents first: a worker reads the whole ledger before its first batch, while
        # grants written after it started race the first events (decided no_consent).
        load.prepare()
        system.start_all()
        t0 = load.start()
        log_line(f"[{0:8.1f}s] load: {args.rate:g} events/s for {args.duration:g}s; {load_line()}")
        run_loop(args, system, load, series, faults, t0)
        report = load.finish()
        drained_s = drain(args, series, faults, t0)
        outcome = Outcome(
            verdict(expected_per_device(report), view.per_device(TENANT)), kafka.dlq_records(),
            view.rows(TENANT), drained_s, report.summary(), system.crashes, view.outcomes(TENANT),
        )  # fmt: skip
    finally:
        load.stop()
        system.stop()
        kafka.close()
    return write(args, series, faults.done, outcome)


def log_line(text: str) -> None:
    print(text, flush=True)


def store_view(st: BenchStack, store: str) -> StoreView:
    from stream_processor.runtime.layout import StateLayout
    from stream_processor.stack.postgres import Postgres

    if store == "sqlite":
        return StoreView(sqlite_path=StateLayout(st.settings.state_dir).sqlite_path)
    return StoreView(dsn=Postgres(st.settings).dsn())


def run_loop(
    args: argparse.Namespace, system: SoakSystem, load: LoadRun, series: Series,
    faults: FaultRunner, t0: float,
) -> None:  # fmt: skip
    """Sample until the load process has published for ``--duration`` and its devices
    have their confirmations; the faults run beside on their own thread."""
    stop = threading.Event()
    thread = faults.start_background(t0, stop)
    next_at = t0
    try:
        while load.running():
            system.check(time.monotonic() - t0)
            if time.monotonic() >= next_at:
                take(series, faults, t0)
                next_at += args.sample_s
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(120)
    if faults.pending:
        log_line(f"faults never run (the load ended first): {faults.pending}")


def take(series: Series, faults: FaultRunner, t0: float) -> None:
    before = series.samples[-1] if series.samples else None
    s = series.take(time.monotonic() - t0)
    if before is not None:
        faults.mark_flowing((before.t_s, before.stored), (s.t_s, s.stored))
    rate = 0.0 if before is None else (s.stored - before.stored) / max(s.t_s - before.t_s, 1e-9)
    rss = " ".join(f"{k} {v:.0f}" for k, v in s.rss_mib.items() if v is not None)
    lag = "?" if s.lag is None else f"{s.lag:,}"
    log_line(f"[{s.t_s:8.1f}s] stored {s.stored:,} ({rate:,.0f}/s) lag {lag}"
             f" | RSS MiB {rss} | load {s.load1:.2f}")  # fmt: skip


def drain(args: argparse.Namespace, series: Series, faults: FaultRunner, t0: float) -> float | None:
    """Sample until the group's lag is 0 and the stored count held still over two
    samples; returns when (seconds since the load started), None if it never did (the
    check runs anyway: what is missing then counts as lost)."""
    deadline = time.monotonic() + args.drain_timeout
    steady = 0
    while time.monotonic() < deadline:
        time.sleep(args.sample_s)
        before = series.samples[-1] if series.samples else None
        take(series, faults, t0)
        now = series.samples[-1]
        still = before is not None and now.stored == before.stored
        steady = steady + 1 if (now.lag == 0 and still) else 0
        if steady >= 2:
            log_line(f"[{now.t_s:8.1f}s] drained: lag 0, {now.stored:,} stored")
            return now.t_s
    log_line(f"the pipeline did not drain within {args.drain_timeout:.0f}s")
    return None


if __name__ == "__main__":
    run(main)
