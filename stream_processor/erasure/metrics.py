"""Prometheus metrics of the erasure worker (bounded labels: never a pseudonym or request id)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class ErasureMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "facegate_erasure_requests_total",
            "erasure requests taken, by outcome (accepted, repeated, invalid)",
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
