"""Where a live event's time goes past the bridge, for the bridge benchmark's latency
phase: the bridge's own produce acknowledgement latency (MQTT receipt → Kafka
confirmed it, acks=all: the leader's append plus the in-sync followers' fetch), read
from its ``/metrics`` histogram, and the time from the leader's append
(LogAppendTime) to a live consumer receiving the record, which a consumer cannot do
before the followers have fetched it (the high watermark) and which is what a
processor worker waits for.

The end-to-end figure of the benchmark (publish hand-off → LogAppendTime) does not
include either wait: the leader stamps the record before replicating it.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HISTOGRAM = "facegate_bridge_produce_latency_seconds"
#: What a broker logs (INFO) when replication or the controller quorum stalls: a
#: follower dropped from or re-added to the in-sync replicas, a voter that lost its
#: leader and stood for election, a broker fenced for missed heartbeats.
BROKER_EVENTS = {
    "ISR shrinks": "Shrinking ISR",
    "ISR expansions": "Expanding ISR",
    "quorum elections": "Completed transition to CandidateState",
    "fenced brokers": "Fencing broker",
}
_BUCKET = re.compile(HISTOGRAM + r'_bucket\{le="([^"]+)"\} ([0-9.e+]+)')


def scrape_buckets(port: int, host: str = "127.0.0.1") -> list[tuple[float, float]]:
    """The histogram's cumulative (upper bound, count) pairs from a bridge's /metrics."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as resp:  # noqa: S310
        text = resp.read().decode()
    return [(float(b), float(n)) for b, n in _BUCKET.findall(text)]


_INFLIGHT = re.compile(r"^facegate_bridge_inflight ([0-9.e+]+)$", re.M)


def scrape_inflight(port: int, host: str = "127.0.0.1") -> float:
    """The bridge's deliveries received but not yet acknowledged, now."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as resp:  # noqa: S310
        found = _INFLIGHT.search(resp.read().decode())
    return float(found.group(1)) if found else float("nan")


@dataclass
class InflightPeak:
    """Samples the bridge's in-flight gauge while it runs: the highest value shows
    whether the MQTT window (Receive Maximum, or the broker's own cap) was full."""

    port: int
    host: str = "127.0.0.1"
    peak: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> InflightPeak:
        if self.port:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, scrape_inflight(self.port, self.host))
            except OSError:
                continue  # a slow scrape on a loaded machine: the next one counts

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return self.peak


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` (seconds; inf past the last
    finite bound, NaN when empty): a bound, not an interpolation."""
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    want = q * buckets[-1][1]
    return next(bound for bound, count in buckets if count >= want)


@dataclass
class LiveTail:
    """A consumer reading ``topic`` from its end while it runs; per record, the wall
    time it arrived minus its LogAppendTime (ms).

    ``login``: the consumer's librdkafka login; None (the default) logs in as the admin
    role of the stack this process's environment names (``private_stack`` puts its
    ``FACEGATE_*`` there), which is no login with that stack's Kafka auth off."""

    bootstrap: str
    topic: str
    login: Mapping[str, str] | None = None
    lags_ms: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> LiveTail:
        from confluent_kafka import OFFSET_END, Consumer, TopicPartition

        from stream_processor.runtime.kafka_auth import Role, confluent_auth
        from stream_processor.runtime.settings import BrokerSettings

        login = self.login
        if login is None:
            login = confluent_auth(BrokerSettings(), Role.ADMIN)
        c = Consumer({**login, "bootstrap.servers": self.bootstrap,
                      "group.id": f"t-{time.time_ns()}", "enable.auto.commit": False})  # fmt: skip
        parts = c.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        c.assign([TopicPartition(self.topic, p, OFFSET_END) for p in parts])
        self._thread = threading.Thread(target=self._run, args=(c,), daemon=True)
        self._thread.start()
        return self

    def _run(self, c: Any) -> None:
        while not self._stop.is_set():
            # consume() waits for its count or its timeout: a short timeout keeps the
            # wait it adds to the arrival time to ~5 ms.
            for m in c.consume(10_000, 0.005):
                now = time.time() * 1000
                if not m.error():
                    self.lags_ms.append(now - m.timestamp()[1])
        c.close()

    def stop(self) -> list[float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return self.lags_ms


def breakdown_line(buckets: list[tuple[float, float]], lags_ms: list[float]) -> str:
    """One line: the bridge's produce acknowledgement p50/p99 (bucket bounds) and the
    append → live consumer p50/p99."""
    ordered = sorted(lags_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    ack = [bucket_quantile(buckets, q) * 1000 for q in (0.5, 0.99)]
    return (
        f"where the time goes (live phase): bridge produce ack (MQTT receipt -> Kafka acks=all"
        f" confirmation) p50 <= {ack[0]:.0f} ms, p99 <= {ack[1]:.0f} ms (histogram bounds,"
        f" {buckets[-1][1] if buckets else 0:.0f} events); leader append -> live consumer"
        f" p50 {at(0.5):.0f} ms, p99 {at(0.99):.0f} ms ({len(ordered)} records)"
    )


class BrokerLogs:
    """Counts ``BROKER_EVENTS`` in the server logs of every node under a state dir,
    from the moment it is made."""

    def __init__(self, state: Path) -> None:
        self._logs = sorted(state.glob("kafka*/logs/server.log"))
        self._from = {p: p.stat().st_size for p in self._logs}

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(BROKER_EVENTS, 0)
        for path in self._logs:
            with open(path, "rb") as fh:
                fh.seek(self._from[path])
                text = fh.read().decode(errors="replace")
            for name, needle in BROKER_EVENTS.items():
                out[name] += text.count(needle)
        return out


def events_line(counts: dict[str, int]) -> str:
    return "broker log events (live phase, all nodes): " + ", ".join(
        f"{k} {v}" for k, v in counts.items()
    )
