"""Background processes tracked by pid files: start detached, check, stop with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stream_processor.errors import NotReady, StackError


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True if the process exists, is not a zombie, and (when it has a command
    line yet) that command line contains ``marker`` (guards against pid reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except FileNotFoundError:
        return False
    if stat[stat.rindex(")") + 2 :].startswith("Z"):
        return False
    # During exec the command line can read empty for a moment.
    return marker is None or not cmdline or marker.encode() in cmdline


def running_pid(pidfile: Path, marker: str) -> int | None:
    pid = read_pid(pidfile)
    if pid is not None and pid_alive(pid, marker):
        return pid
    return None


def start_detached(
    argv: Sequence[str], pidfile: Path, logfile: Path, env: dict[str, str] | None = None
) -> int:
    """Start ``argv`` in its own session, output appended to ``logfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pid(pidfile: Path, marker: str, timeout_s: float = 60.0) -> bool:
    """SIGTERM the process and wait; SIGKILL after ``timeout_s``. True if one was running."""
    pid = running_pid(pidfile, marker)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid, marker):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid, marker):
            _reap(pid)
            time.sleep(0.05)
    pidfile.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (no-op otherwise)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool],
    timeout_s: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    log_hint: Path | None = None,
) -> None:
    """Poll ``check`` until true; fail early if ``alive`` says the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up; see {log_hint}")
        time.sleep(0.2)
    raise NotReady(f"{what} not ready after {timeout_s:.0f}s; see {log_hint}")


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    listening: bool


def broker_status(pidfile: Path, marker: str, host: str, port: int) -> BrokerStatus:
    """Whether the broker of ``pidfile`` runs, and whether its port takes connections."""
    pid = running_pid(pidfile, marker)
    return BrokerStatus(running=pid is not None, pid=pid, listening=port_open(host, port))
