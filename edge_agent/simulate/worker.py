"""One load process: a group of simulated gates, paced to its share of the rate, on
one selector loop. Talks to ``run_load`` through a queue of plain tuples."""

from __future__ import annotations

import logging
import selectors
import signal
import time
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent.pseudonym import SiteSecret
from edge_agent.simulate.device import Endpoint, SimDevice
from edge_agent.simulate.fast_events import FastGate, FastIds
from edge_agent.simulate.gate import SyntheticGate

log = logging.getLogger(__name__)

#: How often a worker reports its counters, seconds.
PROGRESS_EVERY_S = 1.0
#: Events made per loop turn at most, so reading PUBACKs and confirmations keeps up.
BATCH = 2000


class Outbound(Protocol):
    def put(self, item: Any) -> None: ...


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class WorkerPlan:
    """What one process does: its devices (with their site secrets), its share of the
    rate and of the events, and the spec's knobs."""

    index: int
    devices: tuple[tuple[Endpoint, SiteSecret], ...]
    rate: float
    events: int | None
    duration_s: float | None
    first_seq: int
    residents: int
    seed: int | None
    stored_kinds: frozenset[str]
    confirms: bool
    confirm_timeout_s: float
    drain_timeout_s: float
    max_unconfirmed: int
    keepalive_s: int
    session_expiry_s: int
    connect_timeout_s: float


def run_worker(plan: WorkerPlan, out: Outbound, stop: StopFlag) -> None:
    """The process body: connect every device, publish until done, drain, report."""
    # Ctrl-C reaches the whole process group: the parent decides (it sets ``stop``),
    # so a worker never dies mid-drain without its report.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    devices, gates = [], []
    ids = FastIds(None if plan.seed is None else plan.seed * 31 + plan.index)
    for i, (endpoint, secret) in enumerate(plan.devices):
        devices.append(SimDevice(
            endpoint, confirms=plan.confirms, confirm_timeout_s=plan.confirm_timeout_s,
            keepalive_s=plan.keepalive_s, session_expiry_s=plan.session_expiry_s,
            connect_timeout_s=plan.connect_timeout_s,
        ))  # fmt: skip
        seed = None if plan.seed is None else plan.seed * 1_000_003 + plan.index * 10_007 + i
        gates.append(FastGate(SyntheticGate(endpoint.identity, secret, plan.residents, seed=seed),
                              ids))  # fmt: skip
    for d in devices:
        try:
            d.connect()
        except (OSError, ConnectionError, ValueError) as exc:
            e = d.endpoint
            out.put(("error", plan.index, f"{e.identity.username} cannot publish to MQTT at"
                     f" {e.host}:{e.port}: {exc}"))  # fmt: skip
            for other in devices:
                other.close()
            return
    out.put(("ready", plan.index))
    cpu = 0.0
    try:
        cpu0 = time.process_time()
        started, elapsed = _publish(plan, devices, gates, out, stop)
        cpu = time.process_time() - cpu0
        _drain(plan, devices, out, started)
    finally:
        for d in devices:
            d.c.unconfirmed = len(d.pending)
            d.close()
    reports = [(d.identity, d.c, _seq_range(d, plan)) for d in devices]
    out.put(("done", plan.index, elapsed, reports, cpu))


def _seq_range(d: SimDevice, plan: WorkerPlan) -> tuple[int, int] | None:
    return (plan.first_seq, plan.first_seq + d.c.made - 1) if d.c.made else None


def _publish(
    plan: WorkerPlan, devices: list[SimDevice], gates: list[FastGate], out: Outbound,
    stop: StopFlag,
) -> tuple[float, float]:  # fmt: skip
    """Make and publish events until the duration, the event count or ``stop``;
    returns (start, seconds spent making events)."""
    sel = selectors.DefaultSelector()
    n = len(devices)
    made, turn = 0, 0
    started = time.monotonic()
    next_report = started + PROGRESS_EVERY_S
    while not stop.is_set():
        now = time.monotonic()
        elapsed = now - started
        if plan.duration_s is not None and elapsed >= plan.duration_s:
            break
        if plan.events is not None and made >= plan.events:
            break
        if plan.rate > 0:
            due = int(elapsed * plan.rate) + 1 - made
        else:
            due = BATCH if sum(d.unsent for d in devices) < BATCH else 0
        if plan.events is not None:
            due = min(due, plan.events - made)
        now_ms = int(time.time() * 1000)
        for _ in range(min(due, BATCH)):
            # Round-robin over the devices that still have room for unconfirmed events.
            for _ in range(n):
                turn = (turn + 1) % n
                if len(devices[turn].pending) < plan.max_unconfirmed:
                    break
            else:
                break  # every device is full: the cloud confirms nothing; wait
            d = devices[turn]
            seq = plan.first_seq + d.c.made
            payload, kind = gates[turn].make(seq, now_ms)
            d.add(seq, payload, kind, kind in plan.stored_kinds)
            made += 1
        _io(devices, sel, now, 0.0 if due > 0 else 0.002)
        if now >= next_report:
            next_report = now + PROGRESS_EVERY_S
            _progress(plan, devices, out, now - started)
    return started, time.monotonic() - started


def _drain(plan: WorkerPlan, devices: list[SimDevice], out: Outbound, started: float) -> None:
    """Keep publishing until every event is PUBACKed (and confirmed when awaited)."""
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + plan.drain_timeout_s
    next_report = time.monotonic() + PROGRESS_EVERY_S
    while any(d.pending for d in devices):
        now = time.monotonic()
        if now >= deadline:
            left = sum(len(d.pending) for d in devices)
            log.warning("%d events still unconfirmed after the drain timeout", left)
            return
        _io(devices, sel, now, 0.01)
        if now >= next_report:
            next_report = now + PROGRESS_EVERY_S
            _progress(plan, devices, out, now - started)


def _io(devices: list[SimDevice], sel: selectors.DefaultSelector, now: float,
        wait_s: float) -> None:  # fmt: skip
    """One turn of the loop: frame, send, wait a little for input, read, time out."""
    registered = sel.get_map()
    for d in devices:
        d.maybe_reconnect(now)
        sock = d.sock
        if sock is not None and sock.fileno() not in registered:
            sel.register(sock, selectors.EVENT_READ, d)
        d.fill(now)
        d.flush(now)
    for key, _ in sel.select(wait_s):
        device = key.data
        assert isinstance(device, SimDevice)
        device.read(now)
    for d in devices:
        if d.sock is None:
            _unregister(sel, d)
        d.check_timeout(now)


def _unregister(sel: selectors.DefaultSelector, d: SimDevice) -> None:
    for key in list(sel.get_map().values()):
        if key.data is d:
            sel.unregister(key.fileobj)


def _progress(plan: WorkerPlan, devices: list[SimDevice], out: Outbound, elapsed: float) -> None:
    made = sum(d.c.made for d in devices)
    acked = sum(d.c.acked for d in devices)
    confirmed = sum(d.c.confirmed for d in devices)
    connected = sum(d.sock is not None for d in devices)
    out.put(("progress", plan.index, elapsed, made, acked, confirmed, connected))
