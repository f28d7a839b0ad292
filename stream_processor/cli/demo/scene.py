"""What every story step needs: the commands' environment, the files, the gates' ports."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stream_processor.cli.demo.firm import GateFiles
from stream_processor.cli.demo.procs import Cli

_TEMPLATES = re.compile(rb"^facegate_edge_gallery_templates(?:\{[^}]*\})? ([0-9.e+]+)$", re.M)


@dataclass
class Scene:
    cli: Cli
    state_dir: Path
    demo_dir: Path  # the demo's own files: configs, receipt, notice sheet, summary
    store: Path  # the SQLite event store
    web_url: str
    office_secret: Path  # the riverside office's copy of the site secret
    models_dir: Path  # the fetched models and photos (facegate edge models fetch)
    gates: dict[str, GateFiles] = field(default_factory=dict)
    witness_key: str = ""
    pace: float = 1.0  # seconds of pause between steps, for a reader
    #: Set on Ctrl-C / SIGTERM: every wait of the story gives up at once.
    stop: threading.Event = field(default_factory=threading.Event)

    def wait(self, check: Callable[[], bool], timeout_s: float) -> bool:
        return wait_until(check, timeout_s, stop=self.stop)


def gate_templates(port: int, timeout_s: float = 2.0) -> int | None:
    """Face templates in a running agent's gallery (its /metrics), None if unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as r:
            body = r.read()
    except OSError:
        return None
    match = _TEMPLATES.search(body)
    return int(float(match.group(1))) if match else None


def wait_until(
    check: Callable[[], bool], timeout_s: float, every_s: float = 0.5,
    stop: threading.Event | None = None,
) -> bool:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    stop = stop or threading.Event()
    while True:
        if check():
            return True
        if time.monotonic() >= deadline or stop.wait(every_s):
            return False
