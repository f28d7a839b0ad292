"""The store's own thread: batch N is written there while the event loop decides batch N+1.

SQLite and psycopg release the GIL while the database works, so deciding (pure
Python) and writing overlap on two cores instead of taking turns on one.
Batches are written one at a time, in the order they were decided.

A consent withdrawal must not be overtaken by a batch decided before it: the
withdrawal first calls ``drain()``, which waits until every batch decided so
far (``begin()`` is called before deciding) is in the store, and only then
deletes the subject's rows. Batches decided after the withdrawal see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from stream_processor.store.base import AggregateKey, EventStore, StoredEvent


class StoreWriterFailed(RuntimeError):
    """The writer stopped after an error; nothing decided after it will be written."""


class StoreWriter:
    def __init__(self, store_factory: Callable[[], EventStore]) -> None:
        self._factory = store_factory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._store: EventStore | None = None
        self._decided = 0
        self._written = 0
        self._changed = asyncio.Event()
        self._error: BaseException | None = None

    async def open(self) -> None:
        """Open the store in the writer thread (SQLite connections stay in their thread)."""
        loop = asyncio.get_running_loop()
        self._store = await loop.run_in_executor(self._pool, self._factory)

    def begin(self) -> int:
        """Call before deciding a batch; pass the ticket to ``submit``."""
        self._decided += 1
        return self._decided

    def submit(
        self, ticket: int, rows: Sequence[StoredEvent], counts: Mapping[AggregateKey, int]
    ) -> asyncio.Future[int]:
        """Write in the store's thread; the future gives how many rows were new."""
        if self._store is None:
            raise StoreWriterFailed("the store writer is not open")
        if self._error is not None:
            raise StoreWriterFailed("the store writer failed earlier") from self._error
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._store.write_batch, rows, counts)
        future.add_done_callback(lambda f: self._finished(ticket, f))
        return future

    def fail(self, error: BaseException) -> None:
        """A batch was begun but will never be submitted: wake ``drain`` with the error."""
        self._error = error
        self._changed.set()

    def _finished(self, ticket: int, future: asyncio.Future[int]) -> None:
        if future.cancelled():
            self.fail(asyncio.CancelledError())
            return
        error = future.exception()
        if error is not None:
            self.fail(error)
            return
        self._written = max(self._written, ticket)
        self._changed.set()

    async def drain(self) -> None:
        """Wait until every batch decided so far is written."""
        target = self._decided
        while self._written < target:
            if self._error is not None:
                raise StoreWriterFailed("the store writer failed") from self._error
            self._changed.clear()
            await self._changed.wait()

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, store.close)
        self._pool.shutdown(wait=True)
