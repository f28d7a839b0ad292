"""The processor benchmark's options and its table by Kafka cluster size: pure (no
broker, no clock, no machine), so the parsing and the arithmetic are tested alone."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from stream_processor.stack.broker_config import replication_for

#: Largest cluster the local stack starts: each node is a JVM on this machine.
MAX_NODES = 5


def node_sizes(text: str) -> list[int]:
    """``"1,3"`` → ``[1, 3]``: Kafka cluster sizes, run in this order, the first being
    what the others are compared with. An argparse ``type``: a bad list is a usage error."""
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= MAX_NODES:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a cluster size: want whole numbers 1-{MAX_NODES}, e.g. 1,3"
            )
        if int(part) in sizes:
            raise argparse.ArgumentTypeError(f"cluster size {part} is listed twice")
        sizes.append(int(part))
    return sizes


def _store_list(text: str) -> list[str]:
    stores = [s.strip() for s in text.split(",") if s.strip()]
    wrong = [s for s in stores if s not in ("sqlite", "postgres")]
    if not stores or wrong:
        raise argparse.ArgumentTypeError(f"stores are sqlite and/or postgres, not {text!r}")
    return stores


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument(
        "--events", type=int, default=1_000_000, help="events pre-loaded in the raw topic"
    )
    ap.add_argument("--stores", type=_store_list, default="sqlite,postgres",
                    help="comma-separated: sqlite,postgres")  # fmt: skip
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--gates", type=int, default=4, help="gates per site")
    ap.add_argument("--residents", type=int, default=200, help="per site")
    ap.add_argument("--consenting", type=float, default=0.9, help="share of residents with consent")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=10_000, help="FACEGATE_PROCESSOR_BATCH_SIZE")
    ap.add_argument("--profile", action="store_true", help="run the worker under cProfile")
    ap.add_argument(
        "--secure-delete", choices=["on", "off", "both"], default="both",
        help="SQLite PRAGMA secure_delete (FACEGATE_SQLITE_SECURE_DELETE); both: off, then on",
    )  # fmt: skip
    ap.add_argument("--latency-rate", type=float, default=200.0, help="events/s; 0 = skip")
    ap.add_argument("--latency-s", type=float, default=30.0)
    ap.add_argument("--keep", action="store_true", help="keep the state directory")
    ap.add_argument(
        "--kafka-auth", choices=("off", "on", "both"), default="both",
        help="Kafka SASL/SCRAM + ACLs (FACEGATE_KAFKA_AUTH); both: a stack each, off then on",
    )  # fmt: skip
    ap.add_argument(
        "--kafka-nodes", type=node_sizes, default=[1], metavar="N[,N...]",
        help="comma-separated Kafka cluster sizes, a private stack each, in this order, in the\n"
        "same run (1,3: one node against three with RF 3 and min.insync.replicas=2);\n"
        "the table compares each size with the first",
    )  # fmt: skip
    return ap


def parse_args(
    argv: Sequence[str] | None = None, description: str | None = None
) -> argparse.Namespace:
    """The options of ``argv`` (the command line when None); a wrong value exits 2 with
    argparse's usage line."""
    args = build_parser(description).parse_args(argv)
    if args.events < 0 or args.latency_rate < 0 or args.latency_s <= 0:
        build_parser(description).error("--events and --latency-rate are >= 0, --latency-s > 0")
    if args.events == 0 and args.latency_rate == 0:
        build_parser(description).error("nothing to run: --events and --latency-rate are both 0")
    return args


@dataclass(frozen=True)
class Drain:
    """One worker's drain of the pre-loaded backlog."""

    tag: str  # store and setting, e.g. "sqlite-secure-delete-off"
    rate: float  # decided events per second
    per_cpu_s: float  # decided events per CPU-second of the worker


@dataclass(frozen=True)
class Live:
    """The steady publish → stored phase."""

    rate: float  # events/s offered
    rows: int
    sent: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class SizeRun:
    """Everything measured on one cluster size."""

    nodes: int
    drains: list[Drain] = field(default_factory=list)
    live: Live | None = None


def ratio(value: float, base: float) -> str:
    """``value / base`` as ``0.62x``; ``-`` when either is missing (NaN or 0)."""
    if not (math.isfinite(value) and math.isfinite(base)) or base <= 0 or value <= 0:
        return "-"
    return f"{value / base:.2f}x"


def figure(value: float) -> str:
    """A rate as ``12,345``; ``-`` when it was not measured (NaN, or 0 when the drain
    ended between two samples)."""
    return f"{value:,.0f}" if math.isfinite(value) and value > 0 else "-"


def nodes_label(nodes: int) -> str:
    rf, isr = replication_for(nodes)
    return f"{nodes} node{'s' if nodes > 1 else ''} (RF {rf}, min ISR {isr})"


def drain_rows(runs: Sequence[SizeRun]) -> list[str]:
    """One Markdown row per size and worker; ratios against the first size's same worker."""
    base = {d.tag: d for d in runs[0].drains} if runs else {}
    rows = []
    for run in runs:
        for d in run.drains:
            b = base.get(d.tag)
            rows.append(
                f"| {nodes_label(run.nodes)} | {d.tag} | {figure(d.rate)} | "
                f"{ratio(d.rate, b.rate) if b else '-'} | {figure(d.per_cpu_s)} | "
                f"{ratio(d.per_cpu_s, b.per_cpu_s) if b else '-'} |"
            )
    return rows


def live_rows(runs: Sequence[SizeRun]) -> list[str]:
    """One Markdown row per size that ran the live phase."""
    return [
        f"| {nodes_label(r.nodes)} | {r.live.rate:,.0f} | {r.live.rows:,}/{r.live.sent:,} | "
        f"{r.live.p50_ms:,.0f} | {r.live.p99_ms:,.0f} |"
        for r in runs
        if r.live is not None
    ]


def table_lines(
    runs: Sequence[SizeRun], machine: str, event_size: str, load_start: str, load_end: str,
    auth: bool,
) -> list[str]:  # fmt: skip
    """The run's table: the machine, the event size, the load at start and end, then each
    size's drain (events/s, events per CPU-second, each against the first size) and,
    when measured, the live p50/p99."""
    first = nodes_label(runs[0].nodes) if runs else "-"
    out = [
        f"processor by Kafka cluster size, same run, Kafka auth {'on' if auth else 'off'}",
        machine,
        event_size,
        f"start: {load_start}; end: {load_end}",
    ]
    drains = drain_rows(runs)
    if drains:
        out += [
            "",
            f"| Kafka | worker | events/s | vs {first} | events per CPU-s | vs {first} |",
            "|---|---|---:|---:|---:|---:|",
            *drains,
        ]
    live = live_rows(runs)
    if live:
        out += [
            "",
            "| Kafka | live events/s | rows stored | p50 ms | p99 ms |",
            "|---|---:|---:|---:|---:|",
            *live,
        ]
    return out
