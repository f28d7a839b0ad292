"""A process a benchmark started that exits is reported as one ``Error:`` line with
its name, exit code and last log lines, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _machine import run  # noqa: E402
from _pipeline import ComponentExited, check_alive, start_component  # noqa: E402

from stream_processor.errors import FacegateError  # noqa: E402


def test_an_exited_component_is_one_error_line_with_its_log_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [sys.executable, "-c", "print('port in use'); raise SystemExit(70)"]
    comp = start_component("web", argv, {}, tmp_path)
    assert comp.proc.wait(30) == 70
    with pytest.raises(ComponentExited) as exc:
        check_alive([comp])
    assert isinstance(exc.value, FacegateError)
    assert str(exc.value) == "web exited with 70: port in use"
    with pytest.raises(SystemExit) as stopped:
        run(lambda: check_alive([comp]))
    assert stopped.value.code != 0
    err = capsys.readouterr().err
    assert err == "Error: web exited with 70: port in use\n"


def test_a_running_component_passes(tmp_path: Path) -> None:
    comp = start_component("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"],
                           {}, tmp_path)  # fmt: skip
    try:
        check_alive([comp])
    finally:
        comp.proc.kill()
        comp.proc.wait(10)
