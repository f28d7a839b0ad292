"""Scrape targets for Prometheus's file-based discovery (``file_sd_configs``).

A process that serves ``/metrics`` announces itself with one JSON file in
``<state>/monitoring/targets/``; the Prometheus of ``facegate stack up
--with-monitoring`` watches that folder, so a worker or bridge started later is
scraped within one refresh, on whatever port it was given. A clean exit removes
the file; a process that dies leaves it, so Prometheus sees the target down
(``up == 0``) and the alert rules can say so.

Labels are the job (the kind of process) and, where given, the instance name an
operator chose: bounded sets, never a device or person.
"""

from __future__ import annotations

import atexit
import json
import os
import re
from pathlib import Path

from stream_processor.runtime.layout import StateLayout

#: The job of each kind of process, as the alert rules and dashboards name them.
JOBS = frozenset(
    {"facegate-bridge", "facegate-processor", "facegate-erasure", "facegate-web",
     "facegate-audit", "facegate-edge", "facegate-witness"}
)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def targets_dir(state_dir: Path) -> Path:
    return StateLayout(state_dir).root / "monitoring" / "targets"


def target_entry(
    job: str, address: str, name: str | None = None, scheme: str = "http"
) -> list[dict[str, object]]:
    """One file_sd entry: ``address`` is ``host:port`` of the process's /metrics."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; one of {sorted(JOBS)}")
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, not {scheme!r}")
    labels = {"job": job}
    if name:
        labels["facegate_instance"] = name
    if scheme == "https":  # verified against the project CA (the stack's scrape config)
        labels["__scheme__"] = scheme
    return [{"targets": [address], "labels": labels}]


def write_targets(path: Path, entries: list[dict[str, object]]) -> None:
    """Write atomically: Prometheus may read the folder at any moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")
    os.replace(tmp, path)


def announce(
    state_dir: Path,
    job: str,
    port: int,
    host: str = "127.0.0.1",
    name: str | None = None,
    scheme: str = "http",
) -> Path:
    """Announce this process's /metrics until it exits; returns the file written."""
    # A server bound to every interface is scraped on loopback.
    scrape_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
    key = _SAFE.sub("_", name or str(port))
    path = targets_dir(state_dir) / f"{job}-{key}-{os.getpid()}.json"
    write_targets(path, target_entry(job, f"{scrape_host}:{port}", name, scheme))
    atexit.register(path.unlink, missing_ok=True)
    return path
