"""The soak's faults: when each one happens (a schedule parsed from ``--faults``) and
a log of what was done, when, and how long the component took to come back."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: The faults the soak knows, in the order of the default schedule.
KINDS = ("worker", "bridge", "mosquitto", "kafka")
#: What each one does (printed and kept in the result).
WHAT = {
    "worker": "processor worker: SIGTERM, then started again",
    "bridge": "bridge: SIGTERM, then started again",
    "mosquitto": "Mosquitto: kill -9, then started again (autosave_interval 30)",
    "kafka": "Kafka KRaft node: controlled stop (SIGTERM), then started again",
}
#: Default times as shares of the run: spread out, each with time to recover before
#: the next, and the last well before the end so that its effect shows in the samples.
DEFAULT_SHARES = {"worker": 0.15, "bridge": 0.35, "mosquitto": 0.55, "kafka": 0.75}


@dataclass(frozen=True, order=True)
class Fault:
    """One fault, ``at_s`` seconds after the load started."""

    at_s: float
    kind: str


def default_schedule(duration_s: float) -> list[Fault]:
    return [Fault(round(duration_s * DEFAULT_SHARES[k], 1), k) for k in KINDS]


def parse_schedule(spec: str, duration_s: float) -> list[Fault]:
    """``"worker@600,bridge@1200"`` (seconds after the load started), ``"default"``
    (:data:`DEFAULT_SHARES` of the run) or ``"none"``. Every time must fall inside the
    run, and a kind may appear more than once."""
    text = spec.strip().lower()
    if text == "default":
        return default_schedule(duration_s)
    if text == "none":
        return []
    faults = []
    for item in text.split(","):
        kind, sep, at = item.strip().partition("@")
        if not sep or kind not in KINDS:
            raise argparse.ArgumentTypeError(
                f"bad fault {item.strip()!r}: expected KIND@SECONDS, KIND one of {', '.join(KINDS)}"
            )
        try:
            at_s = float(at)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad fault time {at!r} in {item.strip()!r}") from None
        if not 0 < at_s < duration_s:
            raise argparse.ArgumentTypeError(
                f"fault {item.strip()!r} is outside the run (0 < seconds < {duration_s:g})"
            )
        faults.append(Fault(at_s, kind))
    return sorted(faults)


@dataclass
class FaultRecord:
    """What happened: scheduled and actual start, and when the component was back
    (seconds after the load started; ``error`` if the action itself failed)."""

    kind: str
    what: str
    scheduled_s: float
    started_s: float
    recovered_s: float | None = None
    #: First sample after ``recovered_s`` with more stored rows than the one before
    #: (to the sampling interval): when rows flowed again.
    flowing_s: float | None = None
    error: str | None = None

    @property
    def outage_s(self) -> float | None:
        return None if self.recovered_s is None else self.recovered_s - self.started_s

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outage_s": self.outage_s}


@dataclass
class FaultRunner:
    """Runs the due faults of ``schedule``: ``actions[kind]()`` stops and starts the
    component and returns once it is back (the stack's own readiness checks)."""

    schedule: list[Fault]
    actions: Mapping[str, Callable[[], None]]
    log: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    done: list[FaultRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = {f.kind for f in self.schedule} - set(self.actions)
        if missing:
            raise ValueError(f"no action for fault(s) {sorted(missing)}")
        self._pending = sorted(self.schedule)

    def due(self, elapsed_s: float) -> bool:
        return bool(self._pending) and self._pending[0].at_s <= elapsed_s

    def run_due(self, t0: float) -> None:
        """Run every fault whose time has come, one after the other (a fault that
        takes long delays the next, as an operator's would)."""
        while self.due(self.clock() - t0):
            fault = self._pending.pop(0)
            rec = FaultRecord(fault.kind, WHAT[fault.kind], fault.at_s, self.clock() - t0)
            self.log(f"[{rec.started_s:8.1f}s] fault {fault.kind}: {rec.what}")
            try:
                self.actions[fault.kind]()
            except Exception as exc:  # noqa: BLE001 - kept in the result; the run goes on
                rec.error = f"{type(exc).__name__}: {exc}"
                self.log(f"[{self.clock() - t0:8.1f}s] fault {fault.kind} FAILED: {rec.error}")
            else:
                rec.recovered_s = self.clock() - t0
                self.log(
                    f"[{rec.recovered_s:8.1f}s] fault {fault.kind}: back after {rec.outage_s:.1f}s"
                )
            self.done.append(rec)

    @property
    def pending(self) -> list[Fault]:
        return list(self._pending)

    def start_background(self, t0: float, stop: threading.Event) -> threading.Thread:
        """Run the faults on their own thread, so sampling goes on during a slow one
        (a Kafka node's controlled stop and start takes tens of seconds)."""

        def loop() -> None:
            while self._pending and not stop.is_set():
                self.run_due(t0)
                stop.wait(0.2)

        thread = threading.Thread(target=loop, name="soak-faults", daemon=True)
        thread.start()
        return thread

    def mark_flowing(self, before: tuple[float, int], now: tuple[float, int]) -> None:
        """Two consecutive samples ``(t_s, stored)``: rows flowed between them."""
        for rec in list(self.done):
            if (rec.flowing_s is None and rec.recovered_s is not None
                    and before[0] >= rec.recovered_s and now[1] > before[1]):  # fmt: skip
                rec.flowing_s = now[0]
