"""``run_load``: many simulated gates publishing through their own MQTT accounts, in
several processes, with the edge's delivery guarantees. See the package docstring."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from edge_agent.errors import InvalidInput, PublishError
from edge_agent.simulate.device import DeviceCounters, Endpoint
from edge_agent.simulate.load_spec import (
    STORED_KINDS,
    DeviceReport,
    LoadProgress,
    LoadReport,
    LoadSpec,
    SimAccount,
)
from edge_agent.simulate.worker import WorkerPlan, run_worker
from edge_agent.wire.topics import DeviceIdentity


def plan_workers(
    spec: LoadSpec, accounts: Sequence[SimAccount], first_seq: int
) -> list[WorkerPlan]:
    """Split the devices into ``processes`` groups; each gets its share of the rate and
    of the events, in proportion to its devices."""
    n = len(accounts)
    procs = min(n, spec.processes or os.cpu_count() or 1)
    plans = []
    for index in range(procs):
        group = accounts[index::procs]
        share = len(group) / n
        events = None
        if spec.events is not None:
            events = spec.events // procs + (index < spec.events % procs)
            share = events / spec.events
        endpoints = tuple((_endpoint(a, spec), a.site_secret) for a in group)
        plans.append(WorkerPlan(
            index=index, devices=endpoints, rate=spec.rate * share, events=events,
            duration_s=spec.duration_s, first_seq=first_seq, residents=spec.residents,
            seed=spec.seed, stored_kinds=spec.stored_kinds, confirms=spec.confirms,
            confirm_timeout_s=spec.confirm_timeout_s, drain_timeout_s=spec.drain_timeout_s,
            max_unconfirmed=spec.max_unconfirmed, keepalive_s=spec.keepalive_s,
            session_expiry_s=spec.session_expiry_s, connect_timeout_s=spec.connect_timeout_s,
        ))  # fmt: skip
    return [p for p in plans if p.events is None or p.events > 0]


def _endpoint(account: SimAccount, spec: LoadSpec) -> Endpoint:
    m = account.connection.mqtt
    return Endpoint(
        identity=account.connection.identity, host=spec.host or m.host, port=spec.port or m.port,
        username=m.username, password=m.password.get_secret_value(), ca_file=m.ca_file,
    )  # fmt: skip


def run_load(
    spec: LoadSpec,
    accounts: Sequence[SimAccount],
    stop: threading.Event | None = None,
    on_progress: Callable[[LoadProgress], None] | None = None,
) -> LoadReport:
    """Publish ``spec``'s load through ``accounts`` (``len == spec.devices``); returns
    when every process finished its drain. ``PublishError`` when a device cannot
    connect at the start (the broker is down, an account is refused)."""
    if len(accounts) != spec.devices:
        raise InvalidInput(
            f"load spec: {spec.devices} devices ({spec.sites} sites × {spec.devices_per_site})"
            f" but {len(accounts)} accounts given"
        )
    first_seq = spec.first_seq if spec.first_seq is not None else int(time.time() * 1000) * 1000
    plans = plan_workers(spec, accounts, first_seq)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    halt = ctx.Event()
    procs: list[BaseProcess] = [
        ctx.Process(target=run_worker, args=(p, out, halt), daemon=True) for p in plans
    ]
    for p in procs:
        p.start()
    try:
        return _collect(plans, procs, out, halt, stop, on_progress)
    finally:
        halt.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()


def _collect(
    plans: list[WorkerPlan],
    procs: list[BaseProcess],
    out: Any,
    halt: Any,
    stop: threading.Event | None,
    on_progress: Callable[[LoadProgress], None] | None,
) -> LoadReport:
    """Gather the workers' messages until each is done; fold them into one report."""
    report = LoadReport()
    progress: dict[int, tuple[float, int, int, int, int]] = {}
    pending = {p.index for p in plans}
    devices = sum(len(p.devices) for p in plans)
    told_at = 0.0
    while pending:
        if stop is not None and stop.is_set():
            halt.set()
        try:
            msg = out.get(timeout=0.2)
        except queue.Empty:
            dead = [p.index for p, proc in zip(plans, procs, strict=True)
                    if p.index in pending and not proc.is_alive()]  # fmt: skip
            if dead and out.empty():
                raise PublishError(f"load process {dead[0]} ended without a report") from None
            continue
        if msg[0] == "error":
            halt.set()
            raise PublishError(msg[2])
        if msg[0] == "progress":
            progress[msg[1]] = msg[2:]
            # Each worker reports once a second: the caller hears once a second too.
            if on_progress is not None and time.monotonic() - told_at >= 0.9:
                told_at = time.monotonic()
                made, acked, confirmed, connected = (
                    int(sum(v[i] for v in progress.values())) for i in range(1, 5)
                )
                elapsed = max(v[0] for v in progress.values())
                on_progress(LoadProgress(elapsed, made, acked, confirmed, connected, devices))
        elif msg[0] == "done":
            pending.discard(msg[1])
            report.elapsed_s = max(report.elapsed_s, msg[2])
            report.publisher_cpu_s += msg[4]
            for identity, counters, seqs in msg[3]:
                _fold(report, identity, counters, seqs)
    return report


def _fold(
    report: LoadReport, identity: DeviceIdentity, c: DeviceCounters, seqs: tuple[int, int] | None
) -> None:
    report.made += c.made
    report.published += c.acked
    report.publishes += c.publishes
    report.confirmed += c.confirmed
    report.expected_stored += c.stored
    report.refused += c.refused
    report.resend_rounds += c.resends
    report.reconnects += c.reconnects
    report.commands_received += c.commands
    report.last_refusal = c.last_refusal or report.last_refusal
    for kind, n in c.by_kind.items():
        report.by_kind[kind] = report.by_kind.get(kind, 0) + n
    report.per_device[identity] = DeviceReport(
        seqs=seqs, made=c.made, expected_stored=c.stored, published=c.acked,
        confirmed=c.confirmed, unconfirmed=c.unconfirmed,
    )  # fmt: skip


# The spec and report types: re-exported for the package and the soak tools.
__all__ = [
    "STORED_KINDS",
    "DeviceReport",
    "LoadProgress",
    "LoadReport",
    "LoadSpec",
    "SimAccount",
    "plan_workers",
    "run_load",
]
