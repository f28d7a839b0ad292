"""The edge's status report: sampled from its counters, valid on the wire, sent when due."""

from __future__ import annotations

from pathlib import Path

from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.uplink.status import StatusReporter
from edge_agent.wire.status import decode_status
from edge_agent.wire.topics import DeviceIdentity

ME = DeviceIdentity("acme", "north-garden", "main", "cam-1")


def test_report_samples_counters_and_publishes_when_due(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    metrics = EdgeMetrics()
    sent: list[tuple[str, bytes]] = []
    now = {"wall": 1_790_000_000.0, "mono": 100.0}
    reporter = StatusReporter(
        ME, outbox, lambda t, p: sent.append((t, p)) is None, ["det-1", "emb-1"], metrics,
        every_s=10, clock=lambda: now["wall"], monotonic=lambda: now["mono"],
    )  # fmt: skip
    metrics.gallery_templates.set(42)
    metrics.gallery_residents.set(7)
    now["mono"] += 5
    metrics.frames.labels(result="ok").inc(50)
    for seconds in (0.02, 0.04):
        metrics.observe_stage("decision", seconds)
    assert reporter.tick() is True
    assert reporter.tick() is False  # not due again for 10 s
    ((topic, payload),) = sent
    assert topic == "facegate/v1/acme/north-garden/main/cam-1/status"
    status = decode_status(payload)
    assert status.frames_per_s == 10.0 and status.decision_latency_ms == 30.0
    assert (
        status.gallery_templates == 42
        and status.gallery_residents == 7
        and status.models == ["det-1", "emb-1"]
    )
    assert status.outbox_depth == 0 and status.oldest_queued_age_s == 0.0
    assert status.sent_at_ms == 1_790_000_000_000 and status.uptime_s == 5
    outbox.close()


def test_offline_report_is_not_counted_as_sent(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    reporter = StatusReporter(ME, outbox, lambda t, p: False, templates=lambda: (3, 1))
    assert reporter.tick() is False and reporter.sent == 0
    outbox.close()
