"""Running ``facegate`` as a user does: a subprocess, a private state directory,
brokers pointed at closed ports, and many cases at once (each is mostly waiting)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import FACEGATE, REPO, free_ports

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_INFO_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (INFO|DEBUG) ")


@dataclass(frozen=True)
class Case:
    """One command line and what the user must see: one ``Error:`` line saying ``expect``."""

    id: str
    argv: tuple[str, ...]
    expect: str
    env: dict[str, str] = field(default_factory=dict)
    code: int | None = None
    #: Click's usage errors print "Usage: …" and "Try …" around the Error line.
    usage: bool = False
    python: bool = False  # argv runs with the interpreter instead of facegate
    #: Other stderr lines allowed when they contain this (a warning the case is about).
    also: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    @property
    def stderr_lines(self) -> list[str]:
        stripped = (_ANSI.sub("", s).strip() for s in self.stderr.splitlines())
        return [line for line in stripped if line]


@dataclass
class Workspace:
    """Files the cases refer to as ``{name}``, and the environment every case starts from."""

    root: Path
    env: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.root / name

    def format(self, arg: str) -> str:
        return arg.format(ws=self.root, repo=REPO, **self.values)


def base_env(state_dir: Path, closed_ports: list[int]) -> dict[str, str]:
    """The caller's environment without its FACEGATE_ settings, brokers on closed ports.

    The state dir gets the Kafka logins a 'stack up' makes (auth is on by default): a
    command then gets as far as the broker that is down, as on a host whose stack stopped.
    """
    from stream_processor.runtime.kafka_auth import ensure_passwords

    kafka, mqtt = closed_ports
    ensure_passwords(state_dir)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FACEGATE_")}
    env.update(
        FACEGATE_STATE_DIR=str(state_dir),
        FACEGATE_KAFKA_PORT=str(kafka),
        FACEGATE_MQTT_PORT=str(mqtt),
        FACEGATE_MQTT_TLS_PORT="0",
        FACEGATE_WEB_PUBLIC_URL="https://notices.example.org",
    )
    return env


def run(ws: Workspace, case: Case) -> Outcome:
    argv = [ws.format(a) for a in case.argv]
    argv = [sys.executable, *argv] if case.python else [FACEGATE, *argv]
    env = {**ws.env, **{k: ws.format(v) for k, v in case.env.items()}}
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv, env=env, cwd=ws.root, capture_output=True, text=True, timeout=case.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(-9, _text(exc.stdout), _text(exc.stderr) + "\n(timed out)", case.timeout)
    return Outcome(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def run_all(ws: Workspace, cases: Iterable[Case], workers: int = 6) -> dict[str, Outcome]:
    cases = list(cases)
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip((c.id for c in cases), pool.map(lambda c: run(ws, c), cases), strict=True))


def assert_one_error_line(case: Case, out: Outcome) -> None:
    """Non-zero exit, no traceback, exactly one ``Error:`` line saying ``case.expect``."""
    context = f"{case.id}: exit {out.code}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert out.code != 0, context
    if case.code is not None:
        assert out.code == case.code, context
    assert "Traceback" not in out.stderr + out.stdout, context
    lines = out.stderr_lines
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, context
    assert case.expect.lower() in errors[0].lower(), context
    # Progress logged at INFO may precede the error; nothing louder may.
    others = [
        line for line in lines
        if not line.startswith("Error: ") and not _INFO_LOG.match(line)
        and not (case.also and case.also in line)
    ]  # fmt: skip
    if case.usage:
        assert all(line.startswith(("Usage: ", "Try ")) for line in others), context
    else:
        assert others == [], context


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("cli")
    state = root / "state"
    state.mkdir()
    ws = Workspace(root, base_env(state, free_ports(2)))
    yield ws
    shutil.rmtree(root, ignore_errors=True)
