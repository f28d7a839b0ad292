"""The pure part of ingest: raw Kafka values → rows to store or dead letters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edge_agent.errors import WireError
from edge_agent.wire import decode_event
from stream_processor.store.base import StoredEvent


@dataclass
class IngestBatch:
    rows: list[StoredEvent] = field(default_factory=list)
    rejected: list[tuple[bytes, str, str]] = field(default_factory=list)  # raw, reason, detail


def prepare_batch(values: Iterable[bytes], now_ms: int) -> IngestBatch:
    """Decode each value; valid ones become rows, the rest become rejections.

    Duplicate event ids inside the batch are dropped here; across batches the
    store's primary key drops them.
    """
    batch = IngestBatch()
    seen: set[str] = set()
    for raw in values:
        try:
            event = decode_event(raw)
        except WireError as exc:
            batch.rejected.append((bytes(raw), exc.reason, exc.detail))
            continue
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        batch.rows.append(StoredEvent.from_event(event, stored_at_ms=now_ms, expires_at_ms=None))
    return batch
