"""Who used the CPU during a benchmark phase: each process group's share of one core,
read from ``/proc`` at the start and at the end of the phase (utime + stime of every
thread, so threads that ended in between are not counted).

On a machine where the brokers, the bridge and the publishers share two cores, a
latency figure means little without this: a client that spins takes the cores the
brokers' followers need, and acks=all then waits on them. The bridge is split into
librdkafka's threads (``rdk:*``) and the rest (its asyncio loop and Python threads).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
#: How a thread's name (``comm``) marks librdkafka's own threads.
RDKAFKA_PREFIX = "rdk:"


def thread_times(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s live threads, keyed ``librdkafka`` or ``other``."""
    out = {"librdkafka": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended between the listing and the read
        name, rest = text[text.index("(") + 1 :].rsplit(")", 1)
        fields = rest.split()  # stat fields 14 and 15: utime, stime (ticks)
        seconds = (int(fields[11]) + int(fields[12])) / _TICK
        out["librdkafka" if name.startswith(RDKAFKA_PREFIX) else "other"] += seconds
    return out


def pids_named(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (bytes of /proc/*/cmdline)."""
    found = []
    needle = marker.encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle in cmdline.read_bytes().replace(b"\0", b" "):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def pidfile_pids(paths: Iterable[Path]) -> list[int]:
    out = []
    for path in paths:
        try:
            out.append(int(path.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return out


Groups = Mapping[str, Callable[[], list[int]]]
#: Groups measured by a counter of CPU seconds instead of pids (e.g. reaped children).
Counters = Mapping[str, Callable[[], float]]


def reaped_children_s() -> float:
    """CPU seconds of this process's children that have ended and been waited for."""
    t = os.times()
    return t.children_user + t.children_system


def totals(groups: Groups, split: frozenset[str], counters: Counters) -> dict[str, float]:
    """CPU seconds per group now; a group in ``split`` is reported as two rows, its
    librdkafka threads and the rest."""
    out: dict[str, float] = {name: read() for name, read in counters.items()}
    for name, find in groups.items():
        for pid in find():
            for part, seconds in thread_times(pid).items():
                key = f"{name} ({part})" if name in split else name
                out[key] = out.get(key, 0.0) + seconds
    return out


@dataclass(frozen=True)
class Snapshot:
    at: float
    seconds: dict[str, float]


@dataclass
class CpuShare:
    """Start it at the beginning of a phase and stop it at the end: ``stop()`` gives
    each group's CPU as % of one core over the phase (``pids`` are looked up at both
    ends; a process that started or ended in between counts from/to then). Or take
    two ``snapshot()``s and compare them with ``between``."""

    groups: Groups
    split: frozenset[str] = frozenset()
    counters: Counters = field(default_factory=dict)
    _start: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        return Snapshot(time.monotonic(), totals(self.groups, self.split, self.counters))

    def start(self) -> CpuShare:
        self._start = self.snapshot()
        return self

    def stop(self) -> dict[str, float]:
        assert self._start is not None, "stop() before start()"
        return between(self._start, self.snapshot())


def between(a: Snapshot, b: Snapshot) -> dict[str, float]:
    """Each group's CPU from ``a`` to ``b`` as % of one core."""
    wall = b.at - a.at
    if wall <= 0:
        return {}
    names = sorted(set(a.seconds) | set(b.seconds))
    return {n: 100 * max(0.0, b.seconds.get(n, 0.0) - a.seconds.get(n, 0.0)) / wall for n in names}


def share_line(shares: Mapping[str, float], cores: int | None = None, phase: str = "live") -> str:
    """One line: each group's % of a core, largest first, and the machine's total."""
    cores = cores or os.cpu_count() or 1
    parts = ", ".join(f"{k} {v:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]))
    return (
        f"CPU in the {phase} phase, % of one core ({cores} cores = {100 * cores}%): {parts};"
        f" all of these {sum(shares.values()):.0f}%"
    )
