"""Prometheus metrics of the edge agent, on an explicit registry.

Labels come only from bounded sets (stage, kind, decision, outcome, model
role) — never a pseudonym, resident id, card number or PIN.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

#: Latency buckets from 1 ms to 1 s: per-stage inference is milliseconds.
STAGE_BUCKETS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)
STAGES = ("detect", "track", "embed", "match", "frame", "decision")


class EdgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.frames = Counter(
            "facegate_edge_frames_total", "Frames read from the video source",
            ["result"], registry=r,
        )
        self.stage_seconds = Histogram(
            "facegate_edge_stage_seconds",
            "Time per pipeline stage (frame = whole frame; decision = first frame → outbox)",
            ["stage"], buckets=STAGE_BUCKETS, registry=r,
        )
        self.faces = Counter("facegate_edge_faces_total", "Faces detected", registry=r)
        self.decisions = Counter(
            "facegate_edge_decisions_total", "Gate decisions", ["kind", "decision"], registry=r
        )
        self.outbox_depth = Gauge(
            "facegate_edge_outbox_depth", "Rows waiting in the outbox", registry=r
        )
        self.outbox_unconfirmed = Gauge(
            "facegate_edge_outbox_unconfirmed",
            "Rows the broker acknowledged that the cloud has not confirmed durable yet",
            registry=r,
        )
        self.outbox_rejected = Counter(
            "facegate_edge_outbox_rejected_total",
            "Events the outbox refused because its ceiling was reached", registry=r,
        )
        self.outbox_purged = Counter(
            "facegate_edge_outbox_purged_total", "Queued events purged on purpose",
            ["reason"], registry=r,
        )
        self.publish_lag = Gauge(
            "facegate_edge_publish_lag_seconds", "Age of the oldest unpublished row", registry=r
        )
        self.published = Counter(
            "facegate_edge_published_total", "Rows acknowledged by the broker", registry=r
        )
        self.mqtt_connected = Gauge(
            "facegate_edge_mqtt_connected", "1 when connected to the broker", registry=r
        )
        self.commands = Counter(
            "facegate_edge_commands_total", "Commands from the cloud", ["type", "status"],
            registry=r,
        )
        self.gallery_templates = Gauge(
            "facegate_edge_gallery_templates", "Face templates in the gallery", registry=r
        )
        self.gallery_residents = Gauge(
            "facegate_edge_gallery_residents", "Residents registered on this device", registry=r
        )
        self.models = Info("facegate_edge_model", "Models in use", registry=r)
        for result in ("ok", "decode_error"):
            self.frames.labels(result=result)
        for stage in STAGES:
            self.stage_seconds.labels(stage=stage)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage=stage).observe(seconds)
