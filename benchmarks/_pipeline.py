"""Whole-pipeline orchestration shared by the end-to-end benchmark and the soak.

* components started as separate processes through the ``facegate`` CLI (as in
  production), each with its own log file under ``<state>/bench-logs/``;
* the brokers a private stack runs (Mosquitto, Kafka, PostgreSQL, Prometheus) found
  by their command line naming the stack's state folder;
* per-process CPU seconds and RSS read from ``/proc`` (a process and its children:
  PostgreSQL's backends are the postmaster's children);
* the store's rows counted, and latency taken from the rows themselves:
  ``stored_at_ms - occurred_at_ms`` (the gate's event time, set when the event is made).

Benchmarks import it as ``from _pipeline import ...`` (scripts run from this folder).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from stream_processor.errors import FacegateError

if TYPE_CHECKING:
    from stream_processor.runtime.settings import BrokerSettings

FACEGATE = str(Path(sys.executable).with_name("facegate"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

#: Which broker a process is: Kafka by its main class (its executable is java), the
#: others by their executable's name (the state folder's own name may hold any word).
BROKER_EXECUTABLES = ("mosquitto", "prometheus", "postgres")


class ComponentExited(FacegateError):
    """A process the benchmark started exited while the benchmark needed it."""


@dataclass
class Component:
    """One process the benchmark started: its name, process and log."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_component(
    name: str, argv: Sequence[str], env: Mapping[str, str], logs: Path
) -> Component:
    """``facegate <argv>`` (or any argv starting with an executable path) as a child."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    cmd = list(argv) if argv[0].startswith("/") else [FACEGATE, *argv]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=out)  # noqa: S603
    return Component(name, proc, log)


def check_alive(components: Iterable[Component]) -> None:
    """Fail with the component's last log lines when one of them exited (the benchmark
    prints it as one ``Error:`` line)."""
    for c in components:
        code = c.proc.poll()
        if code is not None:
            tail = c.log.read_text(errors="replace").splitlines()[-5:] if c.log.exists() else []
            raise ComponentExited(f"{c.name} exited with {code}: " + " | ".join(tail))


def stop_components(components: Iterable[Component], timeout_s: float = 30) -> None:
    """SIGTERM each, then wait; a process still running after ``timeout_s`` is killed."""
    items = list(components)
    for c in items:
        if c.proc.poll() is None:
            c.proc.terminate()
    for c in items:
        try:
            c.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait(10)


# -- /proc ------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """``pid`` and every descendant alive now."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


@dataclass(frozen=True)
class ProcSample:
    cpu_s: float  # user + system seconds, the process and its children alive now
    rss_bytes: int


def sample(pid: int) -> ProcSample:
    cpu, rss = 0.0, 0
    for p in children(pid):
        fields = _stat(p)
        if fields is not None:
            cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK
            rss += int(fields[21]) * PAGE
    return ProcSample(cpu, rss)


def broker_pids(state: Path) -> dict[str, int]:
    """The stack's broker processes (root of each), found by their command line
    naming ``state``: never another stack's."""
    marker = str(state)
    found: dict[str, int] = {}
    for entry in sorted((e for e in os.listdir("/proc") if e.isdigit()), key=int):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode().split("\0")
        except (OSError, UnicodeDecodeError):
            continue
        if not any(marker in a for a in argv):
            continue
        exe = Path(argv[0]).name
        name = "kafka" if "kafka.Kafka" in argv else exe if exe in BROKER_EXECUTABLES else None
        if name is not None and name not in found:
            found[name] = int(entry)
    return found


def own_cpu_s(exclude: Iterable[int]) -> float:
    """CPU seconds of this process and its descendants outside the subtrees of
    ``exclude`` (the components it started): the load source's processes."""
    skip: set[int] = set()
    for pid in exclude:
        skip.update(children(pid))
    cpu = 0.0
    for p in children(os.getpid()):
        fields = None if p in skip else _stat(p)
        if fields is not None:
            cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return cpu


@dataclass
class CpuMeter:
    """CPU seconds of named sources (a pid's tree, or any reader) between two readings."""

    sources: dict[str, Callable[[], float]]
    _last: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, pids: Mapping[str, int], **extra: Callable[[], float]) -> CpuMeter:
        readers = {n: (lambda p=p: sample(p).cpu_s) for n, p in pids.items()}
        return cls({**readers, **extra})

    def reset(self) -> None:
        self._last = {n: read() for n, read in self.sources.items()}

    def take(self) -> dict[str, float]:
        """CPU seconds each used since the last reset/take."""
        now = {n: read() for n, read in self.sources.items()}
        used = {n: max(0.0, now[n] - self._last.get(n, now[n])) for n in now}
        self._last = now
        return used


# -- the store ----------------------------------------------------------------------
class StoreProbe(Protocol):
    """Read-only looks at an event store while it is written."""

    def count(self) -> int: ...

    def latencies_ms(self, from_ms: int, to_ms: int) -> list[int]:
        """``stored_at - occurred_at`` of every row stored in [from_ms, to_ms)."""
        ...

    def stored_between(self, from_ms: int, to_ms: int) -> int:
        """Rows stored in [from_ms, to_ms)."""
        ...


_BETWEEN_SQL = "SELECT count(*) FROM events WHERE stored_at_ms >= {p} AND stored_at_ms < {p}"
_LATENCY_SQL = (
    "SELECT stored_at_ms - occurred_at_ms FROM events"
    " WHERE stored_at_ms >= {p} AND stored_at_ms < {p}"
)


@dataclass(frozen=True)
class SqliteProbe:
    path: Path

    def _rows(self, sql: str, params: Sequence[int] = ()) -> list[tuple[int, ...]]:
        if not self.path.exists():
            return []
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            db.close()

    def count(self) -> int:
        rows = self._rows("SELECT count(*) FROM events")
        return int(rows[0][0]) if rows else 0

    def latencies_ms(self, from_ms: int, to_ms: int) -> list[int]:
        return [r[0] for r in self._rows(_LATENCY_SQL.format(p="?"), (from_ms, to_ms))]

    def stored_between(self, from_ms: int, to_ms: int) -> int:
        rows = self._rows(_BETWEEN_SQL.format(p="?"), (from_ms, to_ms))
        return int(rows[0][0]) if rows else 0


@dataclass(frozen=True)
class PostgresProbe:
    dsn: str

    def _rows(self, sql: str, params: Sequence[int] = ()) -> list[tuple[int, ...]]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as db:
            try:
                return db.execute(sql, params).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def count(self) -> int:
        rows = self._rows("SELECT count(*) FROM events")
        return int(rows[0][0]) if rows else 0

    def latencies_ms(self, from_ms: int, to_ms: int) -> list[int]:
        return [int(r[0]) for r in self._rows(_LATENCY_SQL.format(p="%s"), (from_ms, to_ms))]

    def stored_between(self, from_ms: int, to_ms: int) -> int:
        rows = self._rows(_BETWEEN_SQL.format(p="%s"), (from_ms, to_ms))
        return int(rows[0][0]) if rows else 0


def percentiles(values: Sequence[int], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles and the max, ``nan`` each when there is nothing."""
    if not values:
        return {**{f"p{q:g}": float("nan") for q in qs}, "max": float("nan")}
    ordered = sorted(values)
    n = len(ordered)
    out = {f"p{q:g}": float(ordered[min(n - 1, max(0, int(q / 100 * n + 0.5) - 1))]) for q in qs}
    out["max"] = float(ordered[-1])
    return out


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.25
) -> None:
    """Poll ``predicate()`` until true; a ``TimeoutError`` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")


def prometheus_targets(url: str) -> dict[str, str]:
    """Health of each target Prometheus scrapes now (``job/instance`` → up/down/unknown)."""
    import json
    import urllib.request

    with urllib.request.urlopen(url + "/api/v1/targets?state=active", timeout=5) as resp:  # noqa: S310
        data = json.load(resp)
    return {
        f"{t['labels'].get('job', '?')}/{t['labels'].get('instance', '?')}": t["health"]
        for t in data["data"]["activeTargets"]
    }


#: Where a stored event's time goes, from the processes' own histograms (ms; per step).
STAGE_QUERIES = {
    "bridge_produce_mean_ms": "1000 * sum(increase(facegate_bridge_produce_latency_seconds_sum"
    "[{w}s])) / sum(increase(facegate_bridge_produce_latency_seconds_count[{w}s]))",
    "bridge_produce_p99_ms": "1000 * histogram_quantile(0.99, sum by (le) "
    "(rate(facegate_bridge_produce_latency_seconds_bucket[{w}s])))",
    "worker_batch_mean_ms": "1000 * sum(increase(facegate_processor_batch_seconds_sum[{w}s]))"
    " / sum(increase(facegate_processor_batch_seconds_count[{w}s]))",
    "worker_batches_per_s": "sum(rate(facegate_processor_batch_seconds_count[{w}s]))",
}


def prometheus_stages(url: str, end_s: float, seconds: float) -> dict[str, float]:
    """Each of ``STAGE_QUERIES`` over the ``seconds`` before ``end_s`` (nan: no data)."""
    import json
    import urllib.parse
    import urllib.request

    out = {}
    for name, expr in STAGE_QUERIES.items():
        q = urllib.parse.urlencode({"query": expr.format(w=max(10, int(seconds))), "time": end_s})
        with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as resp:  # noqa: S310
            result = json.load(resp)["data"]["result"]
        out[name] = float(result[0]["value"][1]) if result else float("nan")
    return out


def drop_mqtt_session(settings: BrokerSettings, client_id: str, timeout_s: float = 10) -> None:
    """End the bridge's persistent MQTT session (clean start, expiry 0) once it is
    stopped: Mosquitto (``max_queued_messages 0``) would otherwise queue every later
    message for it, work the next phase would pay for."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from stream_processor.runtime.accounts import AccountBook
    from stream_processor.runtime.layout import StateLayout

    creds = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(creds.username, creds.password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    client.connect(settings.host, settings.mqtt_port, keepalive=10, clean_start=True,
                   properties=props)  # fmt: skip
    client.loop_start()
    try:
        wait_for(client.is_connected, timeout_s, f"MQTT session {client_id} dropped", 0.05)
    finally:
        client.disconnect()
        client.loop_stop()
