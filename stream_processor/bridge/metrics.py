"""Prometheus metrics of a bridge instance; labels only from bounded sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stream_processor.bridge.validate import REASONS


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "facegate_bridge_received_total", "MQTT messages received", registry=registry
        )
        self.produced = Counter(
            "facegate_bridge_produced_total", "events confirmed by Kafka", registry=registry
        )
        self.acked = Counter(
            "facegate_bridge_acked_total", "MQTT messages acknowledged", registry=registry
        )
        self.dead_lettered = Counter(
            "facegate_bridge_dead_lettered_total",
            "messages sent to the dead-letter topic, by reason",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:
            self.dead_lettered.labels(reason)
        self.produce_failures = Counter(
            "facegate_bridge_produce_failures_total",
            "Kafka sends that failed (the message is redelivered, not lost)",
            registry=registry,
        )
        self.inflight = Gauge(
            "facegate_bridge_inflight", "received but not yet acknowledged", registry=registry
        )
        self.produce_latency = Histogram(
            "facegate_bridge_produce_latency_seconds",
            "time from MQTT receipt to Kafka confirmation",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.connected = Gauge(
            "facegate_bridge_mqtt_connected", "1 while connected to MQTT", registry=registry
        )
