"""Prometheus from the Debian package, run with a generated config (``facegate stack up
--with-monitoring``).

It scrapes whatever is announced in ``<state>/monitoring/targets/`` (file-based
discovery, watched live): the files the running processes write for themselves
(``stream_processor.runtime.targets``, the edge agent's ``http.announce_dir``), and
one file per process kind whose metrics port the settings name, written here at
``up``; one per registered device whose agent's metrics address the registry
holds (``runtime/device_targets``). Rules are the project's own,
``deploy/prometheus/*.yml``. State (config, TSDB, log) lives under ``<state>/monitoring/``.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from stream_processor.errors import StackError
from stream_processor.runtime.device_targets import sync_registry_targets
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.system import require_binary
from stream_processor.runtime.targets import target_entry, targets_dir, write_targets
from stream_processor.runtime.tls import TlsFiles
from stream_processor.stack import procs
from stream_processor.stack.monitoring.settings import MonitoringSettings

#: Files this module writes into the targets folder (the processes' own are others).
CONFIGURED_PREFIX = "configured-"


def configured_targets() -> dict[str, list[dict[str, object]]]:
    """One file_sd entry per process kind whose metrics port its settings name (a
    process expected to run: if it does not, Prometheus sees it down)."""
    from stream_processor.bridge.settings import BridgeSettings
    from stream_processor.erasure.settings import ErasureSettings
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.web.settings import WebSettings

    found: dict[str, list[dict[str, object]]] = {}
    bridge, worker, erasure = BridgeSettings(), ProcessorSettings(), ErasureSettings()
    # The same labels as the process's own announcement (names included), so a
    # target found both ways is one target, scraped once.
    for job, host, port, name in (
        ("facegate-bridge", bridge.metrics_host, bridge.metrics_port, bridge.client_id),
        ("facegate-processor", worker.metrics_host, worker.metrics_port, worker.worker_name),
        ("facegate-erasure", erasure.metrics_host, erasure.metrics_port, None),
    ):
        if port:
            found[job] = target_entry(job, f"{_scrape_host(host)}:{port}", name)
    web = WebSettings()
    if "port" in web.model_fields_set:  # serves /metrics on its own port, when named
        address = f"{_scrape_host(web.host)}:{web.port}"
        scheme = "https" if web.tls else "http"
        found["facegate-web"] = target_entry("facegate-web", address, scheme=scheme)
    return found


def _scrape_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 (bound to all)


def _seconds(value: float) -> str:
    return f"{int(value * 1000)}ms"


@dataclass(frozen=True)
class PrometheusStatus:
    running: bool
    pid: int | None
    ready: bool
    address: str


class Prometheus:
    def __init__(self, state_dir: Path, settings: MonitoringSettings | None = None) -> None:
        self.settings = settings or MonitoringSettings()
        self.state_dir = state_dir
        self.dir = StateLayout(state_dir).root / "monitoring"
        self.targets = targets_dir(state_dir)
        self.config = self.dir / "prometheus.yml"
        self.ca_file = TlsFiles.of(StateLayout(state_dir)).ca_cert
        self.pidfile = self.dir / "prometheus.pid"
        self.logfile = self.dir / "prometheus.log"
        # The config path is unique per state dir: it guards the pid file against reuse.
        self.marker = str(self.config)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def config_doc(self) -> dict[str, object]:
        s = self.settings
        return {
            "global": {
                "scrape_interval": _seconds(s.scrape_interval_s),
                "scrape_timeout": _seconds(min(s.scrape_interval_s, 10.0)),
                "evaluation_interval": _seconds(s.evaluation_interval_s),
            },
            "rule_files": [str(s.rules_dir / "*.yml")],
            "scrape_configs": [
                {
                    # Each target's own job label (facegate-bridge, …) replaces this name.
                    "job_name": "facegate",
                    **self._tls(),
                    "file_sd_configs": [
                        {
                            "files": [str(self.targets / "*.json")],
                            "refresh_interval": _seconds(max(s.scrape_interval_s, 5.0)),
                        }
                    ],
                }
            ],
        }

    def _tls(self) -> dict[str, object]:
        """https targets (the web app with FACEGATE_WEB_TLS) carry a certificate of the
        project CA; plain http ones ignore this. Prometheus refuses a config naming a
        CA file that does not exist, so it is named once the stack has made it."""
        return {"tls_config": {"ca_file": str(self.ca_file)}} if self.ca_file.exists() else {}

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.targets.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: no YAML writer needed, and no quoting surprises.
        self.config.write_text(json.dumps(self.config_doc(), indent=2) + "\n")
        wanted = configured_targets()
        for path in self.targets.glob(f"{CONFIGURED_PREFIX}*.json"):
            if path.stem.removeprefix(CONFIGURED_PREFIX) not in wanted:
                path.unlink(missing_ok=True)
        for job, entries in wanted.items():
            write_targets(self.targets / f"{CONFIGURED_PREFIX}{job}.json", entries)
        sync_registry_targets(self.state_dir)

    def up(self) -> PrometheusStatus:
        binary = require_binary("prometheus", "prometheus")
        self.write_config()
        pid = procs.running_pid(self.pidfile, self.marker)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # re-read the config and the rule files
            return self.status()
        s = self.settings
        if procs.port_open(s.host, s.port):
            raise StackError(
                f"port {s.host}:{s.port} is taken by another process;"
                " set FACEGATE_PROMETHEUS_PORT to a free port"
            )
        argv = [
            binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--storage.tsdb.retention.time={s.retention}",
            f"--web.listen-address={s.host}:{s.port}",
        ]
        procs.start_detached(argv, self.pidfile, self.logfile)
        procs.wait_until(
            self._ready, s.start_timeout_s, "prometheus",
            alive=lambda: procs.running_pid(self.pidfile, self.marker) is not None,
            log_hint=self.logfile,
        )
        return self.status()

    def down(self) -> bool:
        return procs.stop_pid(self.pidfile, self.marker, timeout_s=30.0)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except OSError:
            return False

    def status(self) -> PrometheusStatus:
        pid = procs.running_pid(self.pidfile, self.marker)
        return PrometheusStatus(
            running=pid is not None,
            pid=pid,
            ready=pid is not None and self._ready(),
            address=f"{self.settings.host}:{self.settings.port}",
        )
