"""The soak's result: one summary (what the run was, exactly-once, faults, memory),
written as JSON with every sample, and the plot beside it."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import machine_line
from soak_check import Verdict
from soak_faults import FaultRecord
from soak_series import MemoryRule, Series, memory_summary, plot

from stream_processor.stack.mosquitto import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES

FLAT = {True: "yes", False: "NO", None: "not judged (fit span < 10 min)"}


@dataclass(frozen=True)
class Outcome:
    """What the end of the run found."""

    verdict: Verdict
    dlq: int
    exact_rows: int
    drained_s: float | None
    load: dict[str, Any]
    crashes: list[dict[str, Any]]
    outcomes: dict[str, int]


#: Mosquitto's memory per queued message beside its payload: the stored message, its
#: topic and the session's queue entry, with malloc's rounding (2.0.11's structs).
MOSQUITTO_BYTES_PER_QUEUED = 400


def mosquitto_step_mib(sessions: int = 1) -> float:
    """The most a backlog can make Mosquitto take: each queueing session (the soak runs
    one bridge) full to its bounds. Mosquitto keeps what it took, so its RSS may step up
    by this much at a fault and no more over its lifetime."""
    per_session = MAX_QUEUED_BYTES + MAX_QUEUED_MESSAGES * MOSQUITTO_BYTES_PER_QUEUED
    return sessions * per_session / 2**20


#: The simulator's memory per event it keeps until confirmed (the encoded event and its
#: list entry in the device's ``pending``; ~250 B measured at a Kafka restart, doubled).
SIMULATOR_BYTES_PER_PENDING = 500


def simulator_step_mib(devices: int, max_unconfirmed: int | None = None) -> float:
    """The most the simulator's unconfirmed events can take: each device keeps up to
    ``max_unconfirmed`` (the load's setting) until the bridge confirms them, by design,
    as a gate's outbox does on disk."""
    from edge_agent.simulate.load import LoadSpec

    kept = LoadSpec.max_unconfirmed if max_unconfirmed is None else max_unconfirmed
    return devices * kept * SIMULATOR_BYTES_PER_PENDING / 2**20


def summary(
    args: argparse.Namespace, series: Series, faults: Sequence[FaultRecord], out: Outcome
) -> dict[str, Any]:
    rule = MemoryRule(
        args.duration / 2, args.warmup_s, args.flat_mib_h, args.flat_share_h,
        faults_s=[f.started_s for f in faults],
        step_mib={
            "mosquitto": mosquitto_step_mib(),
            "simulator": simulator_step_mib(args.sites * args.devices_per_site),
        },
    )  # fmt: skip
    memory = memory_summary(series, rule)
    lags = [s.lag for s in series.samples if s.lag is not None]
    loads = [s.load1 for s in series.samples]
    agg = series.samples[-1].stored if series.samples else 0
    exactly_once = out.verdict.ok and out.dlq == 0 and out.drained_s is not None
    flat = not any(m["flat"] is False for m in memory.values())
    judged = any(m["flat"] is not None for m in memory.values())
    reasons = []
    if not exactly_once:
        reasons.append("lost, duplicated or dead-lettered events (or no drain)")
    if not flat:
        reasons.append(
            "memory not flat: " + ", ".join(n for n, m in memory.items() if not m["flat"])
        )
    if any(f.error for f in faults):
        reasons.append("a fault action failed")
    if out.crashes:
        reasons.append("crashed: " + ", ".join(str(c["process"]) for c in out.crashes))
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_line(),
        "store": args.store, "rate": args.rate, "duration_s": args.duration,
        "workers": args.workers, "devices": args.sites * args.devices_per_site,
        "load": out.load,
        "rows": out.exact_rows,
        "stored_by_aggregates": agg,
        "decisions_by_outcome": out.outcomes,
        **out.verdict.as_dict(),
        "dlq": out.dlq,
        "drained_at_s": out.drained_s,
        "max_lag": max(lags) if lags else None,
        "load_avg_1m": {"min": min(loads, default=0.0), "mean": _mean(loads),
                        "max": max(loads, default=0.0)},  # fmt: skip
        "faults": [f.as_dict() for f in faults],
        "crashes": out.crashes,
        "memory": memory,
        "exactly_once": exactly_once,
        "memory_flat": flat if judged else None,
        "ok": not reasons,
        "why_not_ok": reasons,
        "output": output_stem(args.store, args.tag),
    }  # fmt: skip


def output_stem(store: str, tag: str) -> str:
    return f"soak-{store}" + (f"-{tag}" if tag else "")


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


def write(
    args: argparse.Namespace, series: Series, faults: Sequence[FaultRecord], out: Outcome
) -> dict[str, Any]:
    """``<out>/soak-<store>.json`` (summary and every sample) and ``.png``; the summary."""
    result = summary(args, series, faults, out)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / output_stem(args.store, args.tag)
    doc = {"summary": result, "samples": series.as_dicts()}
    tmp = stem.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, stem.with_suffix(".json"))
    marks = [(f.started_s, f.kind) for f in faults]
    title = (
        f"soak: {args.rate:g} events/s for {args.duration / 60:g} min, {args.store},"
        f" {result['devices']} devices; lost {result['lost']}, duplicated"
        f" {result['duplicated_seq'] + result['duplicated_event_id']}, DLQ {out.dlq}"
    )
    plot(series, marks, stem.with_suffix(".png"), title, args.duration)
    return result


def print_summary(result: dict[str, Any], out_dir: Path) -> None:
    """The figures a reader wants first, then where the rest is."""
    load = result["load"]
    print(
        f"published {load.get('published', '?'):,} (confirmed {load.get('confirmed', '?'):,}),"
        f" expected stored {load.get('expected_stored', '?'):,}, rows {result['rows']:,};"
        f" lost {result['lost']}, duplicated (device, seq) {result['duplicated_seq']},"
        f" duplicated event id {result['duplicated_event_id']}, unexpected"
        f" {result['unexpected']}, DLQ {result['dlq']}; max lag {result['max_lag']}"
    )
    print(
        f"stored by the store's per-minute counts: {result['stored_by_aggregates']:,}"
        f" ({result['stored_by_aggregates'] - result['rows']:+,} against the rows);"
        f" decisions by outcome {result['decisions_by_outcome']}"
    )
    for f in result["faults"]:
        print(
            f"fault {f['kind']:9} at {f['started_s']:7.1f}s: back after"
            f" {_s(f['outage_s'])}s, rows flowing again after {_s(_since(f))}s"
            + (f" ERROR {f['error']}" if f["error"] else "")
        )
    print("anonymous memory (MiB); slope between faults, steps at faults, each with its bound")
    print(
        f"{'process':12} {'start':>8} {'end':>8} {'max':>8} {'MiB/h':>8} {'bound':>7}"
        f" {'steps':>22} {'bound':>6} flat"
    )
    for name, m in result["memory"].items():
        steps = " ".join(f"{v:+.0f}" for v in m["steps_mib"]) or "-"
        print(
            f"{name:12} {m['start_mib']:8.1f} {m['end_mib']:8.1f} {m['max_mib']:8.1f}"
            f" {_s(m['slope_mib_per_h'], '8.1f')} {m['bound_mib_per_h']:7.1f}"
            f" {steps:>22} {m['step_bound_mib']:6.0f} {FLAT[m['flat']]}"
        )
    lavg = result["load_avg_1m"]
    print(
        f"load avg (1 min) during the run: {lavg['min']:.2f}-{lavg['max']:.2f}, mean {lavg['mean']}"
    )
    print(f"written: {out_dir / result['output']}.json, .png")
    print("OK" if result["ok"] else "NOT OK: " + "; ".join(result["why_not_ok"]))


def _since(fault: dict[str, Any]) -> float | None:
    return None if fault["flowing_s"] is None else fault["flowing_s"] - fault["started_s"]


def _s(v: float | None, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)
