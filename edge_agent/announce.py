"""Announce the agent's /metrics to a Prometheus on the same host or site LAN.

Writes one file_sd JSON file (job ``facegate-edge``) into ``http.announce_dir``
— the local stack's ``<state>/monitoring/targets`` — while the agent runs; a
clean stop removes it, a crashed agent leaves it, so Prometheus sees it down.
The gate carries no cloud code: this is the same small file format the cloud
processes write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def announce(folder: Path, host: str, port: int) -> Path:
    # A server bound to every interface is scraped on loopback.
    scrape_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
    entry = [{"targets": [f"{scrape_host}:{port}"], "labels": {"job": "facegate-edge"}}]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"facegate-edge-{port}-{os.getpid()}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(entry) + "\n")
    os.replace(tmp, path)
    return path
