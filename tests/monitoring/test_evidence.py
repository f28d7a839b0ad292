"""The monitoring tests' failure report on its own: it never raises over the timeout
it explains, and a check that fails outright is reported with the same evidence."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_ports
from tests.monitoring.evidence import Evidence, log_tail, prometheus_log_seen, wait_seen
from tests.monitoring.prom import Prom

pytestmark = pytest.mark.unit


def test_a_prometheus_that_is_down_is_reported_not_raised(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    gone = Prom(f"http://127.0.0.1:{port}", {}, tmp_path)  # nothing listens there
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(30)
    seen = Evidence(gone, instances=(f"127.0.0.1:{port}",), procs={"agent": proc},
                    logs={"agent": tmp_path / "never-written.log"})
    report = seen.report()
    assert "(could not read this part: URLError" in report
    assert f"agent: pid {proc.pid}, exit code 3" in report
    assert "never-written.log does not exist" in report
    assert "target files:" in report and f"sockets on port {port}:" in report


def test_a_check_that_raises_carries_the_evidence(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("starting\nTraceback: port taken\n")

    def broken() -> bool:
        raise ConnectionResetError("reset by peer")

    with pytest.raises(AssertionError) as failed:
        wait_seen(broken, 5, "the worker", Evidence(logs={"worker": log}))
    text = str(failed.value)
    assert text.startswith("waiting for the worker: ConnectionResetError: reset by peer\n")
    assert "  | Traceback: port taken" in text


def test_a_process_that_dies_ends_the_wait_at_once(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit('ssl: bad CA')"],
                                stdout=out, stderr=subprocess.STDOUT)
        proc.wait(30)
    seen = Evidence(procs={"agent": proc}, logs={"agent": log})
    started = time.monotonic()
    with pytest.raises(AssertionError) as failed:
        wait_seen(lambda: False, 60, "the agent scraped", seen, alive=("agent",))
    assert time.monotonic() - started < 5  # not the 60 s timeout
    text = str(failed.value)
    assert text.startswith("waiting for the agent scraped: ProcessExited: agent exited with code 1")
    assert "  | ssl: bad CA" in text


def test_prometheus_warnings_are_shown_however_old(tmp_path: Path) -> None:
    log = tmp_path / "prometheus.log"
    lines = ['ts=1 level=error component="discovery manager" msg="Error reading file"']
    lines += [f"ts={n} level=info msg=scrape" for n in range(2, 200)]
    log.write_text("\n".join(lines) + "\n")
    seen = prometheus_log_seen(log)
    assert 'msg="Error reading file"' in seen and "ts=199 " in seen and "ts=100 " not in seen


def test_the_log_tail_is_the_last_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"{n}\n" for n in range(40)))
    assert log_tail(log, lines=3).splitlines() == ["  | 37", "  | 38", "  | 39"]
    log.write_text("")
    assert log_tail(log) == "  | (empty)"
