"""A ``web serve`` that outlives its stop bound is killed, and the failure shows the
end of its log (a stuck shutdown must be diagnosable from the CI log alone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.support.web import stop_web

IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('still serving', flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_process_that_ignores_sigterm_is_killed_and_its_log_shown(tmp_path: Path) -> None:
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=out)
    try:
        wait_for(lambda: "still serving" in log.read_text(), 60, "the process's first line")
        with pytest.raises(AssertionError) as failed:
            stop_web(proc, log, timeout_s=1)
        assert proc.returncode is not None  # killed, not left behind
        assert "did not stop within 1s of SIGTERM" in str(failed.value)
        assert "still serving" in str(failed.value)
    finally:
        proc.kill()
        proc.wait(30)


def test_a_process_already_gone_is_left_alone(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(60)
    stop_web(proc, tmp_path / "none.log", timeout_s=1)
    assert proc.returncode == 0
