"""The benchmark's load source: ``facegate simulate``'s library (``edge_agent.simulate``)
on a private stack: real device accounts, every simulated resident consented, one
``run_load`` per step at that step's rate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from _machine import BenchStack
from _pipeline_steps import StepLoad

TENANT = "demo"  # the processor enforces the demo policy: consented residents are stored


@dataclass
class SimulatorDriver:
    accounts: list[Any]
    spec: Any  # LoadSpec without rate and duration
    tenant: str = TENANT
    published_total: int = 0
    expected_total: int = 0
    reports: list[Any] = field(default_factory=list)

    @classmethod
    def prepare(cls, st: BenchStack, sites: int, per_site: int) -> SimulatorDriver:
        """Register ``sites × per_site`` devices and grant consent to their residents."""
        from edge_agent.simulate import LoadSpec, SimAccount
        from edge_agent.uplink.settings import DeviceConnection
        from edge_agent.wire.topics import DeviceIdentity
        from stream_processor.processor.demo_seed import gate_site_secret, seed_demo
        from stream_processor.runtime.devices import register_device
        from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
        from stream_processor.runtime.settings import Topics
        from stream_processor.stack.mosquitto import Mosquitto

        accounts, devices = [], []
        broker = Mosquitto(st.settings)
        for s in range(sites):
            for g in range(per_site):
                ident = DeviceIdentity(TENANT, f"site-{s:02d}", f"gate-{g}", "cam-1")
                data_dir = st.state / "edge" / ident.username
                conn = DeviceConnection.load(
                    Path(register_device(st.settings, ident, broker=broker))
                )
                accounts.append(SimAccount(conn, gate_site_secret(ident, data_dir)))
                devices.append((ident, data_dir))
        office = kafka_python_auth(st.settings, Role.OFFICE)  # {} with Kafka auth off
        seed_demo(st.settings.kafka_bootstrap, Topics(), devices, residents=200, consenting=1.0,
                  auth=office)  # fmt: skip
        # PUBACK ends an event (the bridge PUBACKs once Kafka holds it): re-sends on a
        # late confirmation would add load the step did not offer.
        spec = LoadSpec(sites=sites, devices_per_site=per_site, duration_s=1.0, residents=200,
                        confirms=False, drain_timeout_s=5.0)  # fmt: skip
        return cls(accounts, spec)

    def step(self, rate: float, seconds: float) -> StepLoad:
        from edge_agent.simulate import run_load

        started: list[float] = []

        def progress(p: Any) -> None:
            if not started and p.made:
                started.append(time.time() - p.elapsed_s)

        report = run_load(replace(self.spec, rate=rate, duration_s=seconds), self.accounts,
                          on_progress=progress)  # fmt: skip
        end = time.time()
        self.reports.append(report)
        self.published_total += report.published
        self.expected_total += report.expected_stored
        start = started[0] if started else end - report.elapsed_s
        return StepLoad(report.published, report.expected_stored, start, end)

    def reset_totals(self) -> None:
        self.published_total = self.expected_total = 0
