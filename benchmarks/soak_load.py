"""The soak's load: ``facegate simulate``'s library (``edge_agent.simulate.run_load``)
in a process of its own, so its memory is sampled like every other process's.

The soak registers the devices and grants consent to every simulated resident
(``LoadRun.prepare``); the child rebuilds the same accounts from the state folder's
files, publishes for ``--duration`` with the edge's guarantees (every event kept
until the bridge confirms it durable, re-sent otherwise), waits for the last
confirmations, and writes the ``LoadReport`` as JSON. SIGTERM stops it early.

    python soak_load.py --sites 10 --devices-per-site 4 --rate 1000 --duration 300 \\
        --drain-timeout 600 --report /tmp/load.json      # env: the stack's FACEGATE_*
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _machine import BenchStack
from soak_check import DeviceKey, Expected

from stream_processor.errors import StackError

TENANT = "demo"  # the processor enforces the demo policy: consented residents are stored
RESIDENTS = 200


def identities(sites: int, per_site: int) -> list[Any]:
    from edge_agent.wire.topics import DeviceIdentity

    return [DeviceIdentity(TENANT, f"site-{s:02d}", f"gate-{g}", "cam-1")
            for s in range(sites) for g in range(per_site)]  # fmt: skip


def accounts(sites: int, per_site: int) -> list[Any]:
    """The registered devices' connection files and site secrets (the stack's state
    folder from FACEGATE_STATE_DIR)."""
    from edge_agent.simulate import SimAccount
    from edge_agent.uplink.settings import DeviceConnection
    from stream_processor.processor.demo_seed import gate_site_secret
    from stream_processor.runtime.devices import config_path
    from stream_processor.runtime.settings import BrokerSettings

    settings = BrokerSettings()
    out = []
    for ident in identities(sites, per_site):
        conn = DeviceConnection.load(config_path(settings, ident))
        secret = gate_site_secret(ident, edge_dir(settings.state_dir, ident))
        out.append(SimAccount(conn, secret))
    return out


def edge_dir(state: Path, ident: Any) -> Path:
    """A simulated gate's folder: its copy of the site secret (the office's is beside)."""
    return state / "edge" / str(ident.username)


class LoadRun:
    """The load process of one soak: ``prepare``, ``start``, ``running``, ``finish``."""

    def __init__(self, st: BenchStack, args: argparse.Namespace) -> None:
        self.st, self.args = st, args
        self.report_path = Path(tempfile.mkdtemp(prefix="soak-load-")) / "report.json"
        self.proc: subprocess.Popen[bytes] | None = None

    def prepare(self) -> None:
        """Register every device (account, ACL, session, connection file) and grant
        consent to all its site's simulated residents."""
        from stream_processor.processor.demo_seed import seed_demo
        from stream_processor.runtime.devices import register_device
        from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
        from stream_processor.runtime.settings import Topics
        from stream_processor.stack.mosquitto import Mosquitto

        broker = Mosquitto(self.st.settings)
        devices = []
        for ident in identities(self.args.sites, self.args.devices_per_site):
            register_device(self.st.settings, ident, broker=broker)
            devices.append((ident, edge_dir(self.st.settings.state_dir, ident)))
        office = kafka_python_auth(self.st.settings, Role.OFFICE)
        seed_demo(self.st.settings.kafka_bootstrap, Topics(), devices, residents=RESIDENTS,
                  consenting=1.0, auth=office)  # fmt: skip

    def start(self) -> float:
        a = self.args
        argv = [sys.executable, str(Path(__file__).resolve()), "--sites", str(a.sites),
                "--devices-per-site", str(a.devices_per_site), "--rate", str(a.rate),
                "--duration", str(a.duration), "--drain-timeout", str(a.drain_timeout),
                "--report", str(self.report_path)]  # fmt: skip
        log = open(self.st.state / "bench-logs" / "simulator.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, env=self.st.env, stdout=log, stderr=log)
        return time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def finish(self) -> LoadReportView:
        if self.proc is None or self.proc.wait() != 0 or not self.report_path.exists():
            code = None if self.proc is None else self.proc.returncode
            log = self.st.state / "bench-logs" / "simulator.log"
            raise StackError(f"the load process failed (exit {code}); see {log}")
        return LoadReportView(json.loads(self.report_path.read_text()))

    def stop(self) -> None:
        """Stop the load process if it still runs (its drain is cut short) and remove
        its report's folder (``finish`` has read it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.report_path.parent, ignore_errors=True)


class LoadReportView:
    """The child's report as JSON: totals and, per device, its seq range and how many
    of its events the policy stores."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.doc.items() if k != "per_device"}


def expected_per_device(report: LoadReportView) -> dict[DeviceKey, Expected]:
    out: dict[DeviceKey, Expected] = {}
    for d in report.doc["per_device"]:
        if d["seqs"] is not None:
            key = (d["tenant"], d["site"], d["gate"], d["device"])
            out[key] = Expected(d["seqs"][0], d["seqs"][1], d["expected_stored"])
    return out


def report_doc(report: Any) -> dict[str, Any]:
    """A ``LoadReport`` as JSON-ready data."""
    return {
        "made": report.made, "published": report.published, "publishes": report.publishes,
        "confirmed": report.confirmed, "unconfirmed": report.unconfirmed,
        "expected_stored": report.expected_stored, "refused": report.refused,
        "resend_rounds": report.resend_rounds, "reconnects": report.reconnects,
        "elapsed_s": round(report.elapsed_s, 1), "publish_rate": round(report.publish_rate, 1),
        "by_kind": report.by_kind,
        "per_device": [
            {"tenant": i.tenant, "site": i.site, "gate": i.gate, "device": i.device,
             "seqs": d.seqs, "made": d.made, "expected_stored": d.expected_stored,
             "confirmed": d.confirmed, "unconfirmed": d.unconfirmed}
            for i, d in report.per_device.items()
        ],
    }  # fmt: skip


def child_main() -> None:
    from edge_agent.simulate import LoadSpec, run_load

    ap = argparse.ArgumentParser(description=__doc__)
    for name, kind in (("--sites", int), ("--devices-per-site", int), ("--rate", float),
                       ("--duration", float), ("--drain-timeout", float)):  # fmt: skip
        ap.add_argument(name, type=kind, required=True)
    ap.add_argument("--report", type=Path, required=True)
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    spec = LoadSpec(sites=args.sites, devices_per_site=args.devices_per_site, rate=args.rate,
                    duration_s=args.duration, residents=RESIDENTS, confirms=True,
                    drain_timeout_s=args.drain_timeout)  # fmt: skip
    report = run_load(spec, accounts(args.sites, args.devices_per_site), stop=stop)
    tmp = args.report.with_suffix(".tmp")
    tmp.write_text(json.dumps(report_doc(report)))
    os.replace(tmp, args.report)
    print(f"published {report.published:,}, confirmed {report.confirmed:,},"
          f" unconfirmed {report.unconfirmed:,}, resend rounds {report.resend_rounds},"
          f" reconnects {report.reconnects}", flush=True)  # fmt: skip


if __name__ == "__main__":
    child_main()
