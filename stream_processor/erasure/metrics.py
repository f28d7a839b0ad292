"""Prometheus metrics of the erasure worker (bounded labels: never a pseudonym or request id)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

#: The steps timed by ``step`` (a bounded label set).
STEPS = ("accept", "command", "snapshot", "store", "ledger", "complete")


class ErasureMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "facegate_erasure_requests_total",
            "erasure requests taken, by outcome (accepted; repeated: already in the book, "
            "redelivered or tried again after an outage; invalid: dead-lettered)",
            ["outcome"],
            registry=registry,
        )
        self.acks = Counter(
            "facegate_erasure_acks_total",
            "device acknowledgements of erase commands, by what they did to the progress",
            ["outcome"],
            registry=registry,
        )
        self.completed = Counter(
            "facegate_erasure_completed_total", "erasures completed with a receipt",
            registry=registry,
        )  # fmt: skip
        self.pending = Gauge(
            "facegate_erasure_pending", "erasures waiting (for devices or stores)",
            registry=registry,
        )  # fmt: skip
        self.oldest_pending = Gauge(
            "facegate_erasure_oldest_pending_seconds", "age of the oldest pending erasure",
            registry=registry,
        )  # fmt: skip
        self.commands_sent = Counter(
            "facegate_erasure_commands_sent_total", "erase commands sent (first and re-sent)",
            registry=registry,
        )  # fmt: skip
        self.deleted_rows = Counter(
            "facegate_erasure_deleted_events_total", "stored events deleted by erasures",
            registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "facegate_erasure_latency_seconds",
            "request → receipt",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400),
            registry=registry,
        )
        self.step_seconds = Histogram(
            "facegate_erasure_step_seconds",
            "time of one step of an erasure (accept, command, snapshot, store, ledger, complete)",
            ["step"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )

        self.withdrawals_pending = Gauge(
            "facegate_withdrawals_pending",
            "withdrawal commands some device of their site has not acknowledged yet",
            registry=registry,
        )
        self.withdrawal_devices_overdue = Gauge(
            "facegate_withdrawal_devices_overdue",
            "devices owing a withdrawal acknowledgement past FACEGATE_ERASURE_WITHDRAWAL_"
            "ALARM_AFTER_S (an unreachable gate still holding a withdrawn template)",
            registry=registry,
        )
        self.withdrawal_resent = Counter(
            "facegate_withdrawal_commands_resent_total",
            "withdrawal commands re-sent to a site with devices still owing an ack",
            registry=registry,
        )
        self.withdrawal_acks = Counter(
            "facegate_withdrawal_acks_total",
            "device acknowledgements of withdrawal commands, by what they did to the progress",
            ["outcome"],
            registry=registry,
        )

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        assert name in STEPS
        started = time.perf_counter()
        try:
            yield
        finally:
            self.step_seconds.labels(name).observe(time.perf_counter() - started)
