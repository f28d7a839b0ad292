"""The chaining writer's health as Prometheus metrics (no labels: nothing per subject).

    facegate_audit_writer_active            1 while this instance holds the facts partition
    facegate_audit_writer_chained_total     entries this instance appended to the chain
    facegate_audit_writer_refused_total     facts skipped (not a fact, or an identifier in it)
    facegate_audit_writer_fenced_total      batches a successor fenced (nothing appended)
    facegate_audit_writer_takeovers_total   times this instance became the writer

Alert when no instance of the deployment is active: appends then wait and fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from stream_processor.audit.chain_writer import WriterStats


class Observed(Protocol):
    @property
    def active(self) -> bool: ...

    @property
    def stats(self) -> WriterStats: ...


class WriterCollector(Collector):
    def __init__(self, writer: Observed) -> None:
        self._writer = writer

    def collect(self) -> Iterable[Metric]:
        s = self._writer.stats
        yield GaugeMetricFamily(
            "facegate_audit_writer_active",
            "1 while this instance is the chaining writer",
            value=int(self._writer.active),
        )
        for name, help_, value in (
            ("chained", "entries appended to the audit chain", s.chained),
            ("refused", "audit facts refused (not a fact, or identifying)", s.refused),
            ("fenced", "batches fenced by a successor writer (nothing appended)", s.fenced),
            ("takeovers", "times this instance became the chaining writer", s.takeovers),
        ):
            yield CounterMetricFamily(f"facegate_audit_writer_{name}", help_, value=value)


def register_writer_metrics(writer: Observed, registry: CollectorRegistry) -> WriterCollector:
    collector = WriterCollector(writer)
    registry.register(collector)
    return collector
