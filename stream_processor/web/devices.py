"""The device status table the console reads: the latest status per device, and when seen.

Fed from the ``facegate.devices.status`` topic (compacted, keyed by device)
by ``DeviceStatusFollower``, or directly by ``apply`` in tests. A device is
offline when no status arrived for ``offline_after_s``; "offline since" is its
last status. Past ``unreachable_after_s`` (``FACEGATE_WEB_DEVICE_UNREACHABLE_AFTER_S``,
10 minutes) it is unreachable: an alarm on the console and in
``facegate_web_devices_unreachable{tenant}`` (a gate that long away holds a
backlog, and the commands sent to it wait in its broker session).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from edge_agent.errors import WireError
from edge_agent.wire.status import DeviceStatus, decode_status
from stream_processor.quarantine import Refusal
from stream_processor.tail import TailRecord, ViewFollower

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    status: DeviceStatus
    last_seen_ms: int
    #: Consecutive statuses whose outbox depth grew: the device is not getting its
    #: events out (broker unreachable, ACL wrong) even while it still reports.
    outbox_rising: int = 0

    def outbox_growing(self, reports: int = 3) -> bool:
        return self.outbox_rising >= reports

    def online(self, now_ms: int, offline_after_s: float) -> bool:
        return now_ms - self.last_seen_ms <= offline_after_s * 1000

    def unreachable(self, now_ms: int, unreachable_after_s: float) -> bool:
        return now_ms - self.last_seen_ms > unreachable_after_s * 1000


#: ``DeviceTable``'s default for how long a silent device is only offline.
UNREACHABLE_AFTER_S = 600.0


class DeviceTable:
    """Latest status per (tenant, site, gate, device); thread-safe (a follower thread writes)."""

    def __init__(
        self, offline_after_s: float = 30.0, unreachable_after_s: float = UNREACHABLE_AFTER_S
    ) -> None:
        self.offline_after_s = offline_after_s
        self.unreachable_after_s = unreachable_after_s
        self._rows: dict[tuple[str, str, str, str], DeviceRow] = {}
        self._lock = threading.Lock()

    def apply(self, status: DeviceStatus, received_ms: int) -> None:
        key = (status.tenant, status.site, status.gate, status.device)
        with self._lock:
            old = self._rows.get(key)
            # Reordered records: keep the newest status, and the latest time seen.
            if old is None or old.status.sent_at_ms <= status.sent_at_ms:
                rising = 0
                if old is not None and status.outbox_depth > old.status.outbox_depth:
                    rising = old.outbox_rising + 1
                self._rows[key] = DeviceRow(
                    status, max(received_ms, old.last_seen_ms if old else 0), rising
                )

    def unreachable_by_tenant(self, now_ms: int) -> dict[str, int]:
        """How many devices of each tenant are unreachable now (tenants with none left out)."""
        with self._lock:
            rows = list(self._rows.items())
        return dict(
            Counter(k[0] for k, r in rows if r.unreachable(now_ms, self.unreachable_after_s))
        )

    def of_tenant(self, tenant: str) -> list[DeviceRow]:
        with self._lock:
            rows = [r for k, r in self._rows.items() if k[0] == tenant]
        return sorted(rows, key=lambda r: (r.status.site, r.status.gate, r.status.device))


class UnreachableDevices(Collector):
    """``facegate_web_devices_unreachable{tenant}``, computed at each scrape (a tenant is
    a property firm: a bounded label; never a device or site id)."""

    def __init__(self, table: DeviceTable, clock: Callable[[], float]) -> None:
        self._table = table
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "facegate_web_devices_unreachable",
            "devices with no status for longer than FACEGATE_WEB_DEVICE_UNREACHABLE_AFTER_S",
            labels=["tenant"],
        )
        counts = self._table.unreachable_by_tenant(int(self._clock() * 1000))
        for tenant, n in sorted(counts.items()):
            family.add_metric([tenant], n)
        yield family


class DeviceStatusFollower(ViewFollower[DeviceTable]):
    """Tails the status topic from its start into a ``DeviceTable`` (a daemon thread).

    A status the wire contract refuses (the bridge validated it, but a producer may go
    around the bridge) is dead-lettered with its coordinates and counted, never put in
    the table; a lost broker is reconnected (``stream_processor.tail``)."""

    client_id = "facegate-web-status"
    thread_name = "status-follower"

    def take(self, record: TailRecord) -> Refusal | None:
        if record.value is None:
            return None  # compaction's tombstone: the device's history is gone, not wrong
        try:
            status = decode_status(record.value)
        except WireError as exc:
            return Refusal(exc.reason, exc.detail[:300])
        # The record's Kafka time is when the bridge took it: that is "last seen".
        self.view.apply(status, record.timestamp_ms)
        return None
