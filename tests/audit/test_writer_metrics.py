"""The chaining writer's metrics: what a scrape shows, and no label that could name anyone."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest

from stream_processor.audit.chain_writer import WriterStats
from stream_processor.audit.writer_metrics import register_writer_metrics


@dataclass
class Writer:
    active: bool = False
    stats: WriterStats = field(default_factory=WriterStats)


def test_a_scrape_shows_the_writers_state_and_counts_without_labels() -> None:
    writer = Writer()
    registry = CollectorRegistry()
    register_writer_metrics(writer, registry)
    assert registry.get_sample_value("facegate_audit_writer_active") == 0
    writer.active = True
    writer.stats.chained, writer.stats.refused = 12, 2
    writer.stats.fenced, writer.stats.takeovers = 1, 3
    assert registry.get_sample_value("facegate_audit_writer_active") == 1
    for name, value in (("chained", 12), ("refused", 2), ("fenced", 1), ("takeovers", 3)):
        assert registry.get_sample_value(f"facegate_audit_writer_{name}_total") == value
    text = generate_latest(registry).decode()
    assert "{" not in "".join(x for x in text.splitlines() if not x.startswith("#"))
