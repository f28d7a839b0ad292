"""``FACEGATE_LOG_LEVEL``: a typed setting, any case; a value that is no level is one
``Error:`` line before any command runs (a worker included); unset, the Faust workers
log at WARNING and the other commands at INFO. The level on a running processor worker,
and that no level logs a pseudonym: tests/processor/test_log_level.py."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from stream_processor.cli.handler import worker_log_level
from stream_processor.runtime.settings import LogSettings
from tests.conftest import FACEGATE

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@pytest.fixture
def root_at_info() -> Iterator[None]:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.setLevel(before)


@pytest.mark.unit
@pytest.mark.parametrize("given_", ["debug", "Info", " WARNING ", "error", "CRITICAL"])
def test_a_level_is_taken_in_any_case(given_: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_LOG_LEVEL", given_)
    assert LogSettings().level("WARNING") == given_.strip().upper()


@pytest.mark.unit
@given(st.text(max_size=12).filter(lambda t: t.strip().upper() not in LEVELS))
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        LogSettings(log_level=value)


@pytest.mark.unit
def test_unset_the_faust_workers_log_warnings_and_the_rest_info(
    monkeypatch: pytest.MonkeyPatch, root_at_info: None
) -> None:
    monkeypatch.delenv("FACEGATE_LOG_LEVEL", raising=False)
    assert LogSettings().log_level is None
    assert worker_log_level() == "WARNING" and LogSettings().level("INFO") == "INFO"
    monkeypatch.setenv("FACEGATE_LOG_LEVEL", "info")
    assert worker_log_level() == "INFO"
    # -v / --debug put the root logger at DEBUG: the worker follows.
    logging.getLogger().setLevel(logging.DEBUG)
    assert worker_log_level() == "DEBUG"


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv", [("bridge", "run"), ("processor", "worker"), ("erasure", "worker"),
             ("audit", "follow"), ("audit", "writer")],
)  # fmt: skip
def test_a_bad_level_is_one_error_line_before_the_worker_starts(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(FACEGATE_STATE_DIR=str(tmp_path), FACEGATE_LOG_LEVEL="verbose",
               FACEGATE_KAFKA_PORT="1", FACEGATE_MQTT_PORT="1")  # fmt: skip
    done = subprocess.run([FACEGATE, *argv], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "Error: invalid LogSettings: FACEGATE_LOG_LEVEL: Input should be 'DEBUG', 'INFO',"
        " 'WARNING', 'ERROR' or 'CRITICAL' (got 'VERBOSE')"
    ], done.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything was made
