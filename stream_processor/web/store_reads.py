"""The event-store reads the console needs, confined to one thread of their own.

The SQLite store keeps one connection per thread that opened it; the web app
reads from its event loop and from the live feeds' worker threads. This
adapter opens the store on one dedicated thread and runs every read there,
so any thread may call it and reads never interleave on the connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from stream_processor.store.base import (
    AggregateKey,
    EventStore,
    GroupAge,
    RetentionCutoff,
    SiteKindCounts,
    StoredEvent,
)


class StoreReads(Protocol):
    def aggregates(
        self, tenant: str, since_ms: int, until_ms: int | None = None
    ) -> dict[AggregateKey, int]: ...

    def group_ages(self) -> list[GroupAge]: ...

    def retention_groups(self) -> list[tuple[str, str, str, str]]: ...

    def count_expired(self, cutoffs: Sequence[RetentionCutoff], now_ms: int) -> SiteKindCounts: ...

    def events_of_subject(self, tenant: str, site: str, subject: str) -> list[StoredEvent]: ...


class ThreadConfinedStore:
    def __init__(self, factory: Callable[[], EventStore]) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="web-store")
        self._store = self._pool.submit(factory).result()

    def aggregates(
        self, tenant: str, since_ms: int, until_ms: int | None = None
    ) -> dict[AggregateKey, int]:
        return self._pool.submit(self._store.aggregates, tenant, since_ms, until_ms).result()

    def group_ages(self) -> list[GroupAge]:
        return self._pool.submit(self._store.group_ages).result()

    def retention_groups(self) -> list[tuple[str, str, str, str]]:
        return self._pool.submit(self._store.retention_groups).result()

    def count_expired(self, cutoffs: Sequence[RetentionCutoff], now_ms: int) -> SiteKindCounts:
        return self._pool.submit(self._store.count_expired, cutoffs, now_ms).result()

    def events_of_subject(self, tenant: str, site: str, subject: str) -> list[StoredEvent]:
        return self._pool.submit(self._store.events_of_subject, tenant, site, subject).result()

    def close(self) -> None:
        self._pool.submit(self._store.close).result()
        self._pool.shutdown()
