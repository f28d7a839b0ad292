"""The stepped load of the end-to-end benchmark: offered rate rising until the stored
rate stops following it, with CPU per process and latency per step.

Pure bookkeeping and the saturation rule live here; the stack, the processes and the
load source are the caller's (``pipeline_bench.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from _pipeline import CpuMeter, StoreProbe, percentiles


@dataclass(frozen=True)
class StepLoad:
    """What the load source did in one step."""

    published: int
    expected_stored: int  # rows the policy in force stores of what was published
    start: float  # wall-clock seconds: publishing began
    end: float  # and ended (the stored rate is counted over the same window)


class LoadDriver(Protocol):
    def step(self, rate: float, seconds: float) -> StepLoad:
        """Publish at ``rate`` events/s for ``seconds`` (blocking)."""
        ...


@dataclass
class Step:
    phase: str  # "pipeline" or "raw"
    store: str
    offered: float
    seconds: float
    published: int
    expected: int
    t0_ms: int
    t1_ms: int
    cpu_s: dict[str, float]
    backlog: int  # rows expected so far and not stored at the step's end
    stored: int = 0  # rows stored inside [t0, t1)
    latency_ms: dict[str, float] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)  # from Prometheus, pipeline only
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # at the step's end

    @property
    def published_rate(self) -> float:
        return self.published / self.seconds

    @property
    def stored_rate(self) -> float:
        """Stored rows/s scaled to events/s (rows the policy drops are not a loss)."""
        fraction = self.expected / self.published if self.published else 1.0
        return self.stored / self.seconds / (fraction or 1.0)

    def cpu_per_1k(self) -> dict[str, float]:
        k = max(self.published, 1) / 1000
        return {n: s / k for n, s in self.cpu_s.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "published_rate": self.published_rate,
            "stored_rate": self.stored_rate,
            "cpu_s_per_1k_events": self.cpu_per_1k(),
        }


def saturated(history: Sequence[Step], follow: float = 0.9) -> bool:
    """The pipeline stopped following the offered rate in the last step: its
    back-pressure held the publishers under ``follow`` × offered, or the stored rate
    fell under ``follow`` × published with more than two seconds of load behind, or
    the backlog grew in each of the last two steps by more than a second of load."""
    if not history:
        return False
    last = history[-1]
    rate = last.published_rate
    if rate < follow * last.offered:
        return True
    if last.stored_rate < follow * rate and last.backlog > 2 * rate:
        return True
    if len(history) >= 3:
        b = [s.backlog for s in history[-3:]]
        return b[0] < b[1] < b[2] and b[2] - b[0] > rate
    return False


def run_steps(
    phase: str,
    store: str,
    rates: Sequence[float],
    seconds: float,
    driver: LoadDriver,
    probe: StoreProbe,
    meter: CpuMeter,
    check: Callable[[], None] = lambda: None,
) -> list[Step]:
    """Each rate for ``seconds`` until saturation; each step's rows and latency
    are read from the store when the phase is over (reading competes for the CPU)."""
    steps: list[Step] = []
    expected_total, base = 0, probe.count()
    for rate in rates:
        check()
        meter.reset()
        load = driver.step(rate, seconds)
        cpu = meter.take()
        t0, t1 = load.start, load.end
        load_avg = os.getloadavg()
        expected_total += load.expected_stored
        backlog = expected_total - (probe.count() - base)
        steps.append(
            Step(
                phase,
                store,
                rate,
                t1 - t0,
                load.published,
                load.expected_stored,
                int(t0 * 1000),
                int(t1 * 1000),
                cpu,
                backlog,
                load_avg=load_avg,
            )
        )
        # A first look at this step's stored rate, for the saturation rule.
        last = steps[-1]
        last.stored = probe.stored_between(last.t0_ms, last.t1_ms)
        print(
            f"  {phase:8} {store:8} offered {rate:>8,.0f}/s"
            f" published {last.published_rate:>8,.0f}/s"
            f" stored {last.stored_rate:>8,.0f}/s backlog {backlog:>9,}",
            flush=True,
        )
        if saturated(steps):
            break
    return steps


def measure_latency(steps: Sequence[Step], probe: StoreProbe) -> None:
    """Each step's stored rows and latency percentiles, read after the phase."""
    for s in steps:
        lat = probe.latencies_ms(s.t0_ms, s.t1_ms)
        s.stored = len(lat)
        s.latency_ms = percentiles(lat)


def saturation_rate(steps: Sequence[Step]) -> float:
    """The highest stored rate any step sustained (events/s)."""
    return max((s.stored_rate for s in steps), default=0.0)
