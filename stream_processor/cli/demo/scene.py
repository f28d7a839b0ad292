"""What every story step needs: the commands' environment, the files, the gates' ports."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stream_processor.cli.demo.firm import GateFiles
from stream_processor.cli.demo.procs import Cli


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


#: A scrape: (sample name, its labels) → value.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def gate_metrics(port: int, timeout_s: float = 5.0) -> Samples | None:
    """A running agent's samples (its /metrics) by name and labels, None if unreachable."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as r:
            body = r.read().decode()
    except OSError:
        return None
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def gate_templates(port: int, timeout_s: float = 5.0) -> int | None:
    """Face templates in a running agent's gallery (its /metrics), None if unreachable."""
    samples = gate_metrics(port, timeout_s)
    if samples is None:
        return None
    value = samples.get(("facegate_edge_gallery_templates", frozenset()))
    return None if value is None else int(value)


def commands_done(port: int, kind: str, timeout_s: float = 5.0) -> int | None:
    """Commands of type ``kind`` the agent has carried out, None if unreachable."""
    samples = gate_metrics(port, timeout_s)
    if samples is None:
        return None
    key = ("facegate_edge_commands_total", frozenset({("type", kind), ("status", "done")}))
    return int(samples.get(key, 0))


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
