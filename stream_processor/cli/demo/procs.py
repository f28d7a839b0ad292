"""The processes the demo starts and the ``facegate`` commands its story runs.

Every long-running part is its own process (nothing assumes one process), logging to
its own file; the story's one-shot commands are the very commands an operator types,
so each step can print the command that reproduces it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from stream_processor.errors import FacegateError


class DemoStepError(FacegateError):
    """A story step's command failed; the message names the command and its last lines."""


def facegate_bin() -> str:
    return str(Path(sys.executable).with_name("facegate"))


@dataclass(frozen=True, slots=True)
class CliResult:
    argv: tuple[str, ...]
    stdout: str
    stderr: str

    @property
    def shown(self) -> str:
        """The command as an operator would type it."""
        return "facegate " + shlex.join(self.argv)


@dataclass
class Cli:
    """Runs ``facegate …`` with the demo's environment (ports, state dir, witness keys)."""

    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 180.0

    def __call__(self, *argv: str, extra_env: dict[str, str] | None = None) -> CliResult:
        result = subprocess.run(
            [facegate_bin(), *argv],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, **(extra_env or {})},
            timeout=self.timeout_s,
            check=False,
        )
        out = CliResult(tuple(argv), result.stdout, result.stderr)
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise DemoStepError(f"{out.shown} exited {result.returncode}: {tail}")
        return out


class Children:
    """The long-running processes, each logging to ``<logs>/<name>.log``; stopped in
    reverse dependency order so gates drain their outboxes before the bridge goes."""

    STOP_ORDER = (("gate-", "edge-", "web", "witness"), ("bridge",), ("processor", "erasure"))

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [facegate_bin(), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            # Ctrl-C in the terminal goes to the demo only: it stops the children in order.
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def pids(self) -> list[int]:
        return [p.pid for _, p in self.procs]

    def dead(self) -> list[str]:
        return [name for name, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        for group in self.STOP_ORDER:
            chosen = [p for name, p in self.procs if name.startswith(group)]
            for p in chosen:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in chosen:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
