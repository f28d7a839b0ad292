"""What a monitoring test saw when one of its waits ran out: Prometheus's own view of
the targets it waited for (health, last error, labels, the file they came from), the
target files on disk, who holds the ports, whether the processes still run and the
tails of their logs, so a CI failure explains itself from the CI log alone.

Every part is read defensively: a Prometheus that is down or a log that was never
written is reported as such, never raised over the timeout it is meant to explain."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.targets import targets_dir
from tests.conftest import wait_for
from tests.monitoring.prom import Prom

_TAIL_LINES = 25
_TARGET_KEYS = ("health", "lastError", "lastScrape", "lastScrapeDuration", "scrapeUrl")


def log_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(f"  | {line}" for line in text[-lines:]) or "  | (empty)"


def prometheus_log_seen(path: Path) -> str:
    """Its latest warnings and errors (a target file it could not read, a scrape pool it
    could not start), then its last lines."""
    if not path.exists():
        return f"prometheus log: {path} does not exist"
    lines = path.read_text(errors="replace").splitlines()
    trouble = [x for x in lines if "level=warn" in x or "level=error" in x][-15:]
    shown = "\n".join(f"  | {x}" for x in trouble) or "  | (none)"
    return (f"prometheus log ({path}), warnings and errors:\n{shown}\n"
            f"prometheus log, last lines:\n{log_tail(path, 10)}")


def prometheus_log(state_dir: Path) -> Path:
    """Where the stack's Prometheus for ``state_dir`` writes its log."""
    return StateLayout(state_dir).root / "monitoring" / "prometheus.log"


def _port(instance: str) -> str:
    return instance.rsplit(":", 1)[1]


def _wanted(target: dict[str, Any], instances: tuple[str, ...], jobs: tuple[str, ...]) -> bool:
    labels = target.get("labels", {})
    return labels.get("instance") in instances or labels.get("job") in jobs


def targets_seen(prom: Prom, instances: tuple[str, ...], jobs: tuple[str, ...]) -> str:
    """Prometheus's active targets matching an instance or job, with why each is down."""
    data = prom.get("/api/v1/targets", state="any")
    active, dropped = data["activeTargets"], data.get("droppedTargets", [])
    lines = [f"prometheus: {len(active)} active targets, {len(dropped)} dropped"]
    for target in (t for t in active if _wanted(t, instances, jobs)):
        shown = {k: target.get(k) for k in _TARGET_KEYS}
        source = target.get("discoveredLabels", {}).get("__meta_filepath")
        lines.append(f"  {target['labels']} from {source}: {shown}")
    if len(lines) == 1:
        lines.append(f"  none for instances {list(instances)} or jobs {list(jobs)}")
    return "\n".join(lines)


def target_files(state_dir: Path, instances: tuple[str, ...]) -> str:
    """The file_sd files on disk; the content of those naming one of ``instances``."""
    folder = targets_dir(state_dir)
    if not folder.exists():
        return f"target files: {folder} does not exist"
    paths = sorted(folder.iterdir())
    lines = [f"target files in {folder}: {len(paths)}"]
    for path in paths:
        text = path.read_text(errors="replace") if path.is_file() else ""
        if any(instance in text for instance in instances) or path.name.startswith("."):
            lines.append(f"  {path.name}: {' '.join(text.split())}")  # a half file shows
    return "\n".join(lines)


def port_holders(instances: tuple[str, ...]) -> str:
    """Every TCP socket on each instance's port (a listener, or a connection that took
    the port before the process meant to serve there could bind it)."""
    binary = shutil.which("ss")
    if binary is None:
        return "sockets: no 'ss' to list them"
    lines = []
    for instance in instances:
        port = _port(instance)
        found = subprocess.run(  # noqa: S603 - a fixed tool, arguments built here
            [binary, "-Htanp", f"( sport = :{port} )"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        listed = found.stdout.strip().splitlines() or ["(none)"]
        lines.append(f"sockets on port {port}:\n" + "\n".join(f"  {x}" for x in listed))
    return "\n".join(lines)


def _query(prom: Prom, expr: str) -> str:
    return f"query {expr}: {prom.query(expr)}"


def _log(name: str, path: Path) -> str:
    return f"{name} log ({path}):\n{log_tail(path)}"


def _proc(name: str, proc: subprocess.Popen[bytes]) -> str:
    return f"{name}: pid {proc.pid}, exit code {proc.poll()}"


@dataclass
class Evidence:
    """What to show when a wait fails; each part optional."""

    prom: Prom | None = None
    instances: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    logs: dict[str, Path] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    state_dir: Path | None = None

    def _parts(self) -> list[Callable[[], str]]:
        parts: list[Callable[[], str]] = []
        prom = self.prom
        if prom is not None:
            parts.append(partial(targets_seen, prom, self.instances, self.jobs))
            queries = (*self.queries, *(f'up{{instance="{i}"}}' for i in self.instances))
            parts.extend(partial(_query, prom, q) for q in queries)
        state = self.state_dir or (prom.state_dir if prom is not None else None)
        if state is not None:
            parts.append(partial(target_files, state, self.instances))
            if prom is not None:
                parts.append(partial(prometheus_log_seen, prometheus_log(state)))
        if self.instances:
            parts.append(partial(port_holders, self.instances))
        parts.extend(partial(_proc, name, proc) for name, proc in self.procs.items())
        parts.extend(partial(_log, name, path) for name, path in self.logs.items())
        return parts

    def report(self) -> str:
        lines = ["--- what the test saw ---"]
        for part in self._parts():
            try:
                lines.append(part())
            except Exception as exc:  # noqa: BLE001 - the report must not hide the timeout
                lines.append(f"(could not read this part: {type(exc).__name__}: {exc})")
        return "\n".join(lines)


class ProcessExited(Exception):
    """A process the wait depends on is gone: waiting longer cannot help."""


def wait_seen(
    check: Callable[[], bool],
    timeout_s: float,
    what: str,
    evidence: Evidence,
    alive: tuple[str, ...] = (),
) -> None:
    """``wait_for``, whose failure carries ``evidence.report()``; it fails at once when
    one of the ``alive`` processes (names in ``evidence.procs``) has exited."""

    def still_running_then_check() -> bool:
        for name in alive:
            code = evidence.procs[name].poll()
            if code is not None:
                raise ProcessExited(f"{name} exited with code {code}")
        return check()

    try:
        wait_for(still_running_then_check, timeout_s, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{evidence.report()}") from None
    except Exception as exc:  # the check failed (Prometheus went away, a process died)
        raise AssertionError(
            f"waiting for {what}: {type(exc).__name__}: {exc}\n{evidence.report()}"
        ) from exc
