"""The device status table the console reads: the latest status per device, and when seen.

Fed from the ``facegate.devices.status`` topic (compacted, keyed by device)
by ``DeviceStatusFollower``, or directly by ``apply`` in tests. A device is
offline when no status arrived for ``offline_after_s``; "offline since" is its
last status.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from edge_agent.errors import WireError
from edge_agent.wire.status import DeviceStatus, decode_status
from stream_processor.quarantine import BlockingDeadLetterSink, Quarantine, Refusal
from stream_processor.tail import TailRecord, TopicTail, kafka_consumer

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
    """Tails the status topic from its start into a ``DeviceTable`` (a daemon thread).

    A status the wire contract refuses (the bridge validated it, but a producer may go
    around the bridge) is dead-lettered with its coordinates and counted, never put in
    the table; a lost broker is reconnected (``stream_processor.tail``)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        table: DeviceTable,
        quarantine: Quarantine,
        dead_letters: BlockingDeadLetterSink,
    ) -> None:
        self._table = table
        self._tail = TopicTail(topic, self.take, quarantine, dead_letters,
                               kafka_consumer(bootstrap, "facegate-web-status"))  # fmt: skip

    def start(self) -> DeviceStatusFollower:
        self._tail.start("status-follower")
        return self

    def stop(self) -> None:
        self._tail.stop()

    def take(self, record: TailRecord) -> Refusal | None:
        if record.value is None:
            return None  # compaction's tombstone: the device's history is gone, not wrong
        try:
            status = decode_status(record.value)
        except WireError as exc:
            return Refusal(exc.reason, exc.detail[:300])
        # The record's Kafka time is when the bridge took it: that is "last seen".
        self._table.apply(status, record.timestamp_ms)
        return None
