"""The device status table the console reads: the latest status per device, and when seen.

Fed from the ``facegate.devices.status`` topic (compacted, keyed by device)
by ``DeviceStatusFollower``, or directly by ``apply`` in tests. A device is
offline when no status arrived for ``offline_after_s``; "offline since" is its
last status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.errors import WireError
from edge_agent.wire.status import DeviceStatus, decode_status

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    status: DeviceStatus
    last_seen_ms: int

    def online(self, now_ms: int, offline_after_s: float) -> bool:
        return now_ms - self.last_seen_ms <= offline_after_s * 1000


class DeviceTable:
    """Latest status per (tenant, site, gate, device); thread-safe (a follower thread writes)."""

    def __init__(self, offline_after_s: float = 30.0) -> None:
        self.offline_after_s = offline_after_s
        self._rows: dict[tuple[str, str, str, str], DeviceRow] = {}
        self._lock = threading.Lock()

    def apply(self, status: DeviceStatus, received_ms: int) -> None:
        key = (status.tenant, status.site, status.gate, status.device)
        with self._lock:
            old = self._rows.get(key)
            # Reordered records: keep the newest status, and the latest time seen.
            if old is None or old.status.sent_at_ms <= status.sent_at_ms:
                self._rows[key] = DeviceRow(
                    status, max(received_ms, old.last_seen_ms if old else 0)
                )

    def of_tenant(self, tenant: str) -> list[DeviceRow]:
        with self._lock:
            rows = [r for k, r in self._rows.items() if k[0] == tenant]
        return sorted(rows, key=lambda r: (r.status.site, r.status.gate, r.status.device))


class DeviceStatusFollower:
    """Tails the status topic from its start into a ``DeviceTable`` (a daemon thread)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        table: DeviceTable,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bootstrap, self._topic, self._table, self._clock = bootstrap, topic, table, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DeviceStatusFollower:
        self._thread = threading.Thread(target=self._run, name="status-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def take(self, value: bytes | None, timestamp_ms: int) -> None:
        if value is None:
            return
        try:
            status = decode_status(value)
        except WireError as exc:  # the bridge validated it; a bad record is skipped, not fatal
            log.warning("device status record refused: %s", exc.reason)
            return
        # The record's Kafka time is when the bridge took it: that is "last seen".
        self._table.apply(status, timestamp_ms)

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                client_id="facegate-web-status",
            )
            try:
                partitions = None
                while partitions is None and not self._stop.is_set():
                    partitions = consumer.partitions_for_topic(self._topic)
                    if partitions is None:
                        self._stop.wait(1)
                if partitions is None:
                    return
                tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
                consumer.assign(tps)
                consumer.seek_to_beginning(*tps)
                while not self._stop.is_set():
                    for records in consumer.poll(timeout_ms=200).values():
                        for r in records:
                            self.take(r.value, r.timestamp)
            finally:
                consumer.close()
        except KafkaError as exc:
            log.error("device status follower on %s failed: %s", self._topic, exc)
