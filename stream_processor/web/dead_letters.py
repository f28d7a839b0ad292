"""Dead letters by reason, per tenant, for the console: counts per hour from the DLQ topic.

A letter belongs to the tenant its MQTT source topic names (``facegate/v1/{tenant}/…``:
the broker's ACL proved it); letters of Kafka-sourced records or unparseable topics name
no tenant and are shown to none. Only counts are kept (reason and hour), for the
window the topic keeps letters.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from pydantic import BaseModel, Field

from edge_agent.wire.topics import ROOT
from stream_processor.dead_letter import decode_dead_letter
from stream_processor.quarantine import Refusal
from stream_processor.tail import TailRecord, ViewFollower

HOUR_MS = 3_600_000
#: Reasons kept per tenant: the bridge's and the consumers' reason sets are bounded; more
#: distinct strings than this is someone writing around them, folded into "other".
MAX_REASONS = 64


class ReasonCount(BaseModel):
    reason: str
    letters: int


class DeadLetterReport(BaseModel):
    hours: int
    total: int
    by_reason: list[ReasonCount]
    per_hour: list[int] = Field(description="letters per hour, oldest first")


class DeadLetterCounts:
    def __init__(self) -> None:
        self._counts: dict[str, dict[tuple[str, int], int]] = defaultdict(dict)
        self._lock = threading.Lock()
        self.unreadable = 0

    def add(self, tenant: str, reason: str, at_ms: int) -> None:
        hour = at_ms - at_ms % HOUR_MS
        with self._lock:
            counts = self._counts[tenant]
            if len({r for r, _ in counts}) >= MAX_REASONS and not any(
                r == reason for r, _ in counts
            ):
                reason = "other"
            counts[(reason, hour)] = counts.get((reason, hour), 0) + 1

    def take(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            letter = decode_dead_letter(value)
        except ValueError:  # msgspec's errors are ValueErrors; never re-dead-letter a letter
            self.unreadable += 1
            return
        parts = letter.source_topic.split("/")
        if len(parts) >= 3 and "/".join(parts[:2]) == ROOT:
            self.add(parts[2], letter.reason[:40], letter.received_at_ms)

    def report(self, tenant: str, now_ms: int, hours: int) -> DeadLetterReport:
        last = now_ms - now_ms % HOUR_MS
        first = last - (hours - 1) * HOUR_MS
        with self._lock:
            items = list(self._counts.get(tenant, {}).items())
        per_hour = [0] * hours
        by_reason: dict[str, int] = defaultdict(int)
        for (reason, hour), n in items:
            if first <= hour <= last:
                per_hour[(hour - first) // HOUR_MS] += n
                by_reason[reason] += n
        return DeadLetterReport(
            hours=hours,
            total=sum(per_hour),
            by_reason=[ReasonCount(reason=r, letters=n) for r, n in sorted(by_reason.items())],
            per_hour=per_hour,
        )


class DeadLetterFollower(ViewFollower[DeadLetterCounts]):
    client_id = "facegate-web-dlq"
    thread_name = "dead-letter-counts"

    def take(self, record: TailRecord) -> Refusal | None:
        self.view.take(record.value)
        return None
