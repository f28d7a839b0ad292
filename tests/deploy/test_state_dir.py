"""FACEGATE_STATE_DIR is absolute once loaded, and a command that creates the state
directory says where: one run from another folder never silently starts a second one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stream_processor.cli.state_notice import announce_new_state_dir
from stream_processor.runtime.settings import BrokerSettings
from tests.support.edge import FACEGATE

pytestmark = pytest.mark.unit


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    return {**env, **extra}


def test_a_relative_state_dir_is_made_absolute_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEGATE_STATE_DIR", "state/../here")
    assert BrokerSettings().state_dir == tmp_path / "here"
    monkeypatch.delenv("FACEGATE_STATE_DIR")
    assert BrokerSettings().state_dir == tmp_path / ".facegate"


def test_a_command_that_creates_the_state_dir_names_it_once(tmp_path: Path) -> None:
    office, elsewhere = tmp_path / "office", tmp_path / "elsewhere"
    office.mkdir()
    elsewhere.mkdir()
    first = subprocess.run([FACEGATE, "audit", "public-key"], cwd=office, env=_env(),
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert f"created the state directory {office / '.facegate'} " in first.stderr
    again = subprocess.run([FACEGATE, "audit", "public-key"], cwd=office, env=_env(),
                           capture_output=True, text=True, timeout=60)
    assert "created the state directory" not in again.stderr
    assert again.stdout == first.stdout  # the same key: the same state directory
    # From another folder, a second directory is not made silently.
    other = subprocess.run([FACEGATE, "audit", "public-key"], cwd=elsewhere, env=_env(),
                           capture_output=True, text=True, timeout=60)
    assert f"created the state directory {elsewhere / '.facegate'} " in other.stderr
    # With an absolute FACEGATE_STATE_DIR, every folder uses the one directory.
    pinned = subprocess.run([FACEGATE, "audit", "public-key"], cwd=elsewhere,
                            env=_env(FACEGATE_STATE_DIR=str(office / ".facegate")),
                            capture_output=True, text=True, timeout=60)
    assert pinned.stdout == first.stdout and "created" not in pinned.stderr


def test_nothing_is_said_when_nothing_was_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEGATE_STATE_DIR", str(tmp_path / "s"))
    said: list[str] = []
    with announce_new_state_dir(said.append):
        pass
    assert said == []
    with announce_new_state_dir(said.append):
        (tmp_path / "s").mkdir()
    assert said == [
        f"facegate: created the state directory {tmp_path / 's'} (FACEGATE_STATE_DIR; set it "
        "to an absolute path to use one directory from any folder)"
    ]
