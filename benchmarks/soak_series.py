"""The soak's time series: RSS of each process (a process and its children, read
from /proc by ``_pipeline.sample``: a multi-process simulator counts whole), stored
rows, consumer lag; the memory slope; and the plot."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _pipeline import children, sample


@dataclass
class Sample:
    t_s: float
    rss_mib: dict[str, float | None]
    pids: dict[str, int | None]
    stored: int
    lag: int | None
    load1: float
    #: Anonymous resident memory (RssAnon: heap, stacks, native allocations), which is
    #: what memory is judged by. RSS adds file pages mapped and touched (a JVM's jars,
    #: Kafka's mmapped log indexes, growing with the log): page cache the kernel takes
    #: back at will, plotted but not read as growth.
    anon_mib: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Series:
    """Samples of the named processes (``pids()`` is read at each sample: a restarted
    component has a new pid), the store's rows and the consumer lag."""

    pids: Callable[[], Mapping[str, int | None]]
    stored: Callable[[], int]
    lag: Callable[[], int | None]
    samples: list[Sample] = field(default_factory=list)

    def take(self, t_s: float) -> Sample:
        pids = dict(self.pids())
        rss = {name: (None if pid is None else _mib(sample(pid).rss_bytes))
               for name, pid in pids.items()}  # fmt: skip
        anon = {
            name: (None if pid is None else _mib(anon_bytes(pid))) for name, pid in pids.items()
        }
        s = Sample(t_s, rss, pids, self.stored(), self.lag(), os.getloadavg()[0], anon)
        self.samples.append(s)
        return s

    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.samples:
            seen.update(dict.fromkeys(s.rss_mib))
        return list(seen)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [
            {"t_s": round(s.t_s, 1), "rss_mib": {k: _r(v) for k, v in s.rss_mib.items()},
             "anon_mib": {k: _r(v) for k, v in s.anon_mib.items()},
             "stored": s.stored, "lag": s.lag, "load1": s.load1}
            for s in self.samples
        ]  # fmt: skip


def anon_bytes(pid: int) -> int:
    """RssAnon of ``pid`` and its descendants (0 when gone)."""
    total = 0
    for p in children(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("RssAnon:"):
                total += int(line.split()[1]) * 1024
    return total


def _mib(rss_bytes: int) -> float | None:
    return rss_bytes / 2**20 if rss_bytes else None  # 0: the process is gone


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def pooled_slope_per_hour(segments: Sequence[Sequence[tuple[float, float]]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points in MiB per hour, with one intercept
    per segment (one segment per lifetime of a process): a restart's drop in RSS is not
    read as shrinking, nor hides growth within a lifetime. None without at least three
    points spread in time."""
    cov = var = 0.0
    n = 0
    for pts in segments:
        if len(pts) < 2:
            continue
        mt = sum(t for t, _ in pts) / len(pts)
        mv = sum(v for _, v in pts) / len(pts)
        var += sum((t - mt) ** 2 for t, _ in pts)
        cov += sum((t - mt) * (v - mv) for t, v in pts)
        n += len(pts)
    if n < 3 or var == 0:
        return None
    return cov / var * 3600


#: Shortest span of fitted samples on which a slope is judged: over a few minutes, a
#: JVM's or an allocator's step extrapolates to any number per hour.
MIN_JUDGED_SPAN_S = 600.0
#: A step at a fault is the level after it (once its backlog has drained: the soak's
#: "rows flowing again" takes ~20 s) against the level before, each the median of the
#: samples in a window of this length.
STEP_WINDOW_S = 120.0
STEP_SETTLE_S = 60.0


@dataclass(frozen=True)
class MemoryRule:
    """How a process's memory is judged: growth between faults (``bound_mib_h``, or
    ``bound_share_h`` of its mean RSS per hour, whichever is larger), and each step at
    a fault (``step_mib``, where a bound is stated for the process; else one hour of the
    allowed growth). Each lifetime's first ``warmup_s`` is left out."""

    fit_from_s: float
    warmup_s: float
    bound_mib_h: float
    bound_share_h: float
    faults_s: Sequence[float] = ()
    step_mib: Mapping[str, float] = field(default_factory=dict)


Point = tuple[float, float, int | None]  # t, MiB, pid


def _segment(t: float, pid: int | None, faults_s: Sequence[float]) -> tuple[int | None, int]:
    """Samples of one lifetime between two faults share an intercept."""
    return pid, sum(1 for f in faults_s if f <= t)


def _median(values: Sequence[float]) -> float:
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def fault_steps(
    pts: Sequence[Point], rule: MemoryRule, every_fault: bool = False
) -> list[tuple[int | None, float]]:
    """Per fault the process lived through (same pid before and after, out of its
    warm-up; from ``fit_from_s`` on unless ``every_fault``): its pid and the rise of its
    level, median after the fault settled minus median before. A restart is a new
    lifetime, not a step."""
    born: dict[int | None, float] = {}
    for t, _, pid in pts:
        born.setdefault(pid, t)
    steps: list[tuple[int | None, float]] = []
    for f in rule.faults_s:
        if f < rule.fit_from_s and not every_fault:
            continue
        before = [(v, pid) for t, v, pid in pts if f - STEP_WINDOW_S <= t < f]
        after = [
            (v, pid)
            for t, v, pid in pts
            if f + STEP_SETTLE_S <= t < f + STEP_SETTLE_S + STEP_WINDOW_S
        ]
        if not before or not after:
            continue
        pid = before[-1][1]
        if after[0][1] != pid or f < born[pid] + rule.warmup_s:
            continue
        level_before = _median([v for v, p in before if p == pid])
        steps.append((pid, _median([v for v, p in after if p == pid]) - level_before))
    return steps


def judge_memory(name: str, pts: Sequence[Point], rule: MemoryRule) -> dict[str, Any]:
    """The slope within lifetimes and between faults (one intercept per such segment,
    from ``fit_from_s`` on, each fault's first :data:`STEP_SETTLE_S` left out) and the
    steps at faults, each against its bound; ``flat`` None (not judged) when the fitted
    samples span less than :data:`MIN_JUDGED_SPAN_S`."""
    born: dict[int | None, float] = {}
    for t, _, pid in pts:
        born.setdefault(pid, t)
    segments: dict[tuple[int | None, int], list[tuple[float, float]]] = {}
    for t, v, pid in pts:
        # A fault's backlog filling and draining is its step, not growth over time.
        settling = any(f <= t < f + STEP_SETTLE_S for f in rule.faults_s)
        if t >= rule.fit_from_s and t >= born[pid] + rule.warmup_s and not settling:
            segments.setdefault(_segment(t, pid, rule.faults_s), []).append((t, v))
    slope = pooled_slope_per_hour(list(segments.values()))
    fitted = [v for seg in segments.values() for _, v in seg]
    mean = sum(fitted) / len(fitted) if fitted else pts[-1][1]
    bound = max(rule.bound_mib_h, rule.bound_share_h * mean)
    # A stated bound covers a whole lifetime (what a backlog took is kept); without
    # one, steps are judged where the slope is, past the first half's warm-up (a
    # worker's page cache filling is not a step of its fault).
    step_bound = rule.step_mib.get(name, bound)
    steps = fault_steps(pts, rule, every_fault=name in rule.step_mib)
    # Memory a backlog made a process take is reused by the next one: the steps of one
    # lifetime together stay within the bound, they do not each get it anew.
    risen: dict[int | None, float] = {}
    for pid, step in steps:
        risen[pid] = risen.get(pid, 0.0) + max(step, 0.0)
    times = [t for seg in segments.values() for t, _ in seg]
    judged = slope is not None and max(times) - min(times) >= MIN_JUDGED_SPAN_S
    steps_ok = all(rise <= step_bound for rise in risen.values())
    return {
        "start_mib": round(pts[0][1], 1),
        "end_mib": round(pts[-1][1], 1),
        "max_mib": round(max(v for _, v, _ in pts), 1),
        "lifetimes": len(born),
        "fit_points": len(fitted),
        "slope_mib_per_h": None if slope is None else round(slope, 1),
        "bound_mib_per_h": round(bound, 1),
        "steps_mib": [round(step, 1) for _, step in steps],
        "step_bound_mib": round(step_bound, 1),
        "flat": (slope <= bound and steps_ok) if judged and slope is not None else None,
    }


def memory_summary(series: Series, rule: MemoryRule) -> dict[str, dict[str, Any]]:
    """Per process: memory at the first and last sample, its peak, restarts, the slope
    between faults and the steps at faults, judged by ``rule``; anonymous memory where
    it was sampled (:attr:`Sample.anon_mib`), else RSS."""
    out: dict[str, dict[str, Any]] = {}
    for name in series.names():
        pts = [
            (s.t_s, v, s.pids.get(name))
            for s in series.samples
            if (v := s.anon_mib.get(name, s.rss_mib.get(name))) is not None
        ]
        if pts:
            out[name] = judge_memory(name, pts, rule)
    return out


def stored_rates(series: Series) -> list[tuple[float, float]]:
    """(mid-time, rows/s) between consecutive samples."""
    s = series.samples
    return [
        ((a.t_s + b.t_s) / 2, (b.stored - a.stored) / (b.t_s - a.t_s))
        for a, b in zip(s, s[1:], strict=False)
        if b.t_s > a.t_s
    ]


def plot(
    series: Series, faults: Sequence[tuple[float, str]], path: Path, title: str, load_end_s: float
) -> None:
    """RSS per process (top) and stored rows/s (bottom) over time, faults marked, and
    the end of the load (what follows is the drain)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for name in series.names():
        pts = [(s.t_s / 60, v) for s in series.samples if (v := s.rss_mib.get(name)) is not None]
        if pts:
            top.plot(*zip(*pts, strict=True), label=name, linewidth=1.2)
    top.set_yscale("log")
    top.set_ylabel("RSS (MiB, log scale)")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    rates = stored_rates(series)
    if rates:
        bottom.plot([t / 60 for t, _ in rates], [r for _, r in rates], color="black",
                    linewidth=1, label="stored/s")  # fmt: skip
    # The store's per-minute counts: a replayed duplicate is counted there again.
    bottom.set_ylabel("stored/s (per-minute counts)")
    lag = [(s.t_s / 60, s.lag) for s in series.samples if s.lag is not None]
    if lag:
        right = bottom.twinx()
        right.plot(*zip(*lag, strict=True), color="tab:blue", linewidth=1, alpha=0.7)
        right.set_ylabel("consumer lag (records)", color="tab:blue")
    bottom.set_xlabel("minutes since the load started")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        for at_s, _ in faults:
            ax.axvline(at_s / 60, color="red", linestyle="--", linewidth=0.8)
        ax.axvline(load_end_s / 60, color="grey", linestyle=":", linewidth=1)
    for at_s, kind in faults:
        top.annotate(kind, (at_s / 60, 0.02), xycoords=("data", "axes fraction"),
                     rotation=90, va="bottom", ha="right", fontsize=8, color="red")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
