"""Prometheus metrics of a bridge instance (labels only from bounded sets), and its
HTTP endpoint: ``/metrics`` and ``/healthz``."""

from __future__ import annotations

import json
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily, Metric

from stream_processor.bridge.validate import ACK, EVENT, REASONS, STATUS


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "facegate_bridge_received_total", "MQTT messages received", registry=registry
        )
        self.produced = Counter(
            "facegate_bridge_produced_total",
            "accepted messages confirmed by Kafka, by kind (event, ack, status)",
            ["kind"],
            registry=registry,
        )
        for kind in (EVENT, ACK, STATUS):
            self.produced.labels(kind)
        self.acked = Counter(
            "facegate_bridge_acked_total", "MQTT messages acknowledged", registry=registry
        )
        self.confirmations = Counter(
            "facegate_bridge_confirmations_total",
            "delivery confirmations sent to devices (one per device and contiguous range)",
            registry=registry,
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
        self.produce_latency = BatchHistogram(
            "facegate_bridge_produce_latency_seconds",
            "time from MQTT receipt to Kafka confirmation",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.connected = Gauge(
            "facegate_bridge_mqtt_connected", "1 while connected to MQTT", registry=registry
        )
        self.reconnects = Counter(
            "facegate_bridge_mqtt_connects_total", "successful MQTT connects", registry=registry
        )
        self.commands_relayed = Counter(
            "facegate_bridge_commands_relayed_total",
            "Kafka commands published to MQTT and acknowledged by the broker",
            registry=registry,
        )


class BatchHistogram:
    """A Prometheus histogram fed a batch at a time: one lock per batch instead of
    ``Histogram.observe``'s lock and bucket walk per value (~2 µs; the bridge
    observes every message). Exported like ``Histogram`` (``_bucket``, ``_count``,
    ``_sum``)."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self._name, self._doc = name, documentation
        self._bounds = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: Sequence[float]) -> None:
        bounds = self._bounds
        counts = [0] * len(self._counts)
        for value in values:
            counts[bisect_left(bounds, value)] += 1  # le is inclusive, as in Histogram
        total = sum(values)
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum += total

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total = self._counts, self._sum
        cumulative, buckets = 0, []
        for bound, count in zip((*self._bounds, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
        yield HistogramMetricFamily(self._name, self._doc, buckets=buckets, sum_value=total)


class HealthServer:
    """``/metrics`` (Prometheus text) and ``/healthz`` (200 healthy, 503 not, JSON body)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Callable[[], dict[str, object]],
    ) -> None:
        registry_ = registry
        health_ = health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.startswith("/metrics"):
                    body, status, ctype = generate_latest(registry_), 200, CONTENT_TYPE_LATEST
                elif self.path.startswith("/healthz"):
                    state = health_()
                    status = 200 if state.get("healthy") else 503
                    body, ctype = json.dumps(state).encode(), "application/json"
                else:
                    body, status, ctype = b"not found\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="bridge-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
