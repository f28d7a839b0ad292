"""``run_load``: many simulated gates publishing through their own MQTT accounts, in
several processes, with the edge's delivery guarantees. See the package docstring."""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from edge_agent.errors import InvalidInput, PublishError
from edge_agent.pseudonym import SiteSecret
from edge_agent.simulate.device import DeviceCounters, Endpoint
from edge_agent.simulate.worker import WorkerPlan, run_worker
from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire import EventKind
from edge_agent.wire.topics import DeviceIdentity

#: What the demo policy stores when every simulated resident consented: all but
#: unknown faces (counted, never stored).
STORED_KINDS = frozenset(k.value for k in EventKind if k is not EventKind.UNKNOWN_FACE)
MAX_RATE = 10_000_000.0


@dataclass(frozen=True)
class LoadSpec:
    """What to simulate. Invalid values raise ``InvalidInput`` naming the field.

    ``rate`` is events/s over all devices (0 = as fast as the broker takes them);
    the run ends after ``duration_s`` or ``events`` (whichever comes first; at least
    one is required) or when ``stop`` is set. ``confirms`` keeps each event until
    the bridge confirms it durable (off: a PUBACK ends it, for the publishers-alone
    benchmark). ``first_seq`` defaults to the wall clock in ms × 1000, so the seqs
    of a later run never overlap an earlier one's.
    """

    sites: int = 1
    devices_per_site: int = 1
    rate: float = 100.0
    duration_s: float | None = None
    events: int | None = None
    residents: int = 200
    seed: int | None = None
    processes: int | None = None
    confirms: bool = True
    confirm_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0
    max_unconfirmed: int = 20_000
    first_seq: int | None = None
    stored_kinds: frozenset[str] = STORED_KINDS
    host: str | None = None
    port: int | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _check(self.sites >= 1, "sites must be at least 1")
        _check(self.devices_per_site >= 1, "devices_per_site must be at least 1")
        _check(self.devices <= 100_000, "at most 100,000 devices (sites × devices_per_site)")
        _check(math.isfinite(self.rate) and 0 <= self.rate <= MAX_RATE,
               f"rate must be between 0 and {MAX_RATE:,.0f} events/s (0 = as fast as possible)")
        _check(self.duration_s is not None or self.events is not None,
               "give a duration or a number of events")
        if self.duration_s is not None:
            _check(math.isfinite(self.duration_s) and self.duration_s > 0,
                   "duration_s must be a positive number of seconds")
        if self.events is not None:
            _check(1 <= self.events <= 10**12, "events must be between 1 and 10^12")
        _check(1 <= self.residents <= 100_000, "residents must be between 1 and 100,000")
        _check(self.processes is None or 1 <= self.processes <= 256,
               "processes must be between 1 and 256")
        for name in ("confirm_timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            _check(math.isfinite(value) and 0 < value <= 86_400, f"{name} must be in (0, 86400]")
        _check(math.isfinite(self.drain_timeout_s) and 0 <= self.drain_timeout_s <= 86_400,
               "drain_timeout_s must be in [0, 86400]")
        _check(1 <= self.max_unconfirmed <= 10_000_000,
               "max_unconfirmed must be between 1 and 10,000,000")
        _check(self.first_seq is None or 0 <= self.first_seq <= 2**52,
               "first_seq must be between 0 and 2^52")
        _check(self.port is None or 1 <= self.port <= 65535, "port must be between 1 and 65535")
        _check(5 <= self.keepalive_s <= 3600, "keepalive_s must be between 5 and 3600")
        _check(60 <= self.session_expiry_s <= 0xFFFFFFFF, "session_expiry_s must be ≥ 60")
        unknown = set(self.stored_kinds) - {k.value for k in EventKind}
        _check(not unknown, f"stored_kinds names unknown kinds: {sorted(unknown)}")  # fmt: skip

    @property
    def devices(self) -> int:
        return self.sites * self.devices_per_site


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidInput(f"load spec: {message}")


@dataclass(frozen=True)
class SimAccount:
    """A registered device (its ``devices add`` connection file) and its site's secret,
    which pseudonymises the simulated residents as the office's consents do."""

    connection: DeviceConnection
    site_secret: SiteSecret


@dataclass(frozen=True)
class DeviceReport:
    #: Inclusive seq range of the events this device made; None when it made none.
    seqs: tuple[int, int] | None
    made: int
    #: How many of them the policy in force stores (``LoadSpec.stored_kinds``).
    expected_stored: int
    published: int
    confirmed: int
    unconfirmed: int


@dataclass
class LoadReport:
    """Counts are of distinct events unless said otherwise."""

    made: int = 0
    #: PUBACKed at least once.
    published: int = 0
    #: PUBLISH packets sent, re-sends included.
    publishes: int = 0
    confirmed: int = 0
    expected_stored: int = 0
    refused: int = 0
    resend_rounds: int = 0
    reconnects: int = 0
    commands_received: int = 0
    elapsed_s: float = 0.0
    #: CPU seconds the publishing processes spent while making events (drain excluded).
    publisher_cpu_s: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    per_device: dict[DeviceIdentity, DeviceReport] = field(default_factory=dict)
    last_refusal: str = ""

    @property
    def publish_rate(self) -> float:
        """Events made and handed to the broker per second of the publishing phase."""
        return self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def unconfirmed(self) -> int:
        return sum(d.unconfirmed for d in self.per_device.values())


@dataclass(frozen=True)
class LoadProgress:
    elapsed_s: float
    made: int
    published: int
    confirmed: int
    connected: int
    devices: int


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
