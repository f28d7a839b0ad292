"""Where a worker's batches are written: in a store process of its own, or inline.

``process`` (default): a child process owns the store connection. While it
writes batch N, the worker's event loop fetches and decides batch N+1, on the
other core. A thread would not do: SQLite releases the GIL around every row's
``sqlite3_step`` and must win it back from the busy event loop each time, and
a thread writer measured *slower* than writing inline (docs/processor.md).
Batches cross the pipe as msgpack (~1 µs per row; pickling the rows cost 8).

``inline``: the write runs on the event loop, as before (one core).

Batches are written one at a time, in the order they were decided. A consent
withdrawal must not be overtaken by a batch decided before it: the withdrawal
first calls ``drain()``, which waits until every batch decided so far
(``begin()`` is called before deciding) is in the store, and only then deletes
the subject's rows. Batches decided after the withdrawal see it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from stream_processor.errors import StoreError
from stream_processor.store.base import AggregateKey, EventStore, StoredEvent

StoreFactory = Callable[[], EventStore]


class StoreWriterFailed(StoreError):
    """The writer stopped after an error; nothing decided after it will be written."""


class StoreWriter:
    """Ordering and the withdrawal barrier; subclasses say where a write runs."""

    def __init__(self) -> None:
        self._decided = 0
        self._written = 0
        self._changed = asyncio.Event()
        self._error: BaseException | None = None

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def _write(
        self, rows: Sequence[StoredEvent], counts: Mapping[AggregateKey, int]
    ) -> asyncio.Future[int]:
        raise NotImplementedError

    def begin(self) -> int:
        """Call before deciding a batch; pass the ticket to ``submit``."""
        self._decided += 1
        return self._decided

    def submit(
        self, ticket: int, rows: Sequence[StoredEvent], counts: Mapping[AggregateKey, int]
    ) -> asyncio.Future[int]:
        """Start writing; the future gives how many rows were new."""
        if self._error is not None:
            raise StoreWriterFailed("the store writer failed earlier") from self._error
        future = self._write(rows, counts)
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


class InlineStoreWriter(StoreWriter):
    """Writes on the event loop (blocking it for the transaction)."""

    def __init__(self, store_factory: StoreFactory) -> None:
        super().__init__()
        self._factory = store_factory
        self._store: EventStore | None = None

    async def open(self) -> None:
        self._store = self._factory()

    def _write(
        self, rows: Sequence[StoredEvent], counts: Mapping[AggregateKey, int]
    ) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._store is None:
            future.set_exception(StoreWriterFailed("the store writer is not open"))
            return future
        try:
            future.set_result(self._store.write_batch(rows, counts))
        except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the write
            future.set_exception(exc)
        return future

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()


_encode = msgspec.msgpack.Encoder().encode
_STOP = b""


class ProcessStoreWriter(StoreWriter):
    """Writes in a child process that owns the store (``store_factory`` must pickle)."""

    def __init__(self, store_factory: StoreFactory) -> None:
        super().__init__()
        self._factory = store_factory
        self._conn: Connection | None = None
        self._process: Any = None
        # One thread that only waits for the child's replies (blocked in recv,
        # it does not hold the GIL); replies come back in the order sent.
        self._replies = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-replies")

    async def open(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process with a running loop
        parent, child = ctx.Pipe()
        self._process = ctx.Process(
            target=serve, args=(child, self._factory), name="facegate-store-writer", daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent
        await asyncio.get_running_loop().run_in_executor(self._replies, self._reply)

    def _reply(self) -> int:
        assert self._conn is not None
        try:
            status, value = msgspec.msgpack.decode(self._conn.recv_bytes())
        except EOFError:
            raise StoreWriterFailed("the store writer process exited") from None
        if status != "ok":
            raise StoreWriterFailed(f"store write failed in the writer process: {value}")
        return int(value)

    def _write(
        self, rows: Sequence[StoredEvent], counts: Mapping[AggregateKey, int]
    ) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        if self._conn is None:
            future: asyncio.Future[int] = loop.create_future()
            future.set_exception(StoreWriterFailed("the store writer is not open"))
            return future
        self._conn.send_bytes(_encode((rows, list(counts.items()))))
        return loop.run_in_executor(self._replies, self._reply)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.send_bytes(_STOP)
            except OSError:
                pass  # the child is gone already
            conn.close()
        if self._process is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._process.join, 30)
            if self._process.is_alive():
                self._process.kill()
        self._replies.shutdown(wait=False)


def serve(conn: Connection, store_factory: StoreFactory) -> None:
    """The writer process: one batch at a time until the stop message or the
    parent's end of the pipe closes (the parent died)."""
    # Ctrl-C and SIGTERM go to the parent, which stops us after its last batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        store = store_factory()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send_bytes(_encode(("error", f"{type(exc).__name__}: {exc}")))
        return
    decode = msgspec.msgpack.Decoder(tuple[list[list[Any]], list[tuple[list[Any], int]]]).decode
    try:
        conn.send_bytes(_encode(("ok", 0)))
        while True:
            try:
                message = conn.recv_bytes()
            except EOFError:
                return
            if message == _STOP:
                return
            rows, counts = decode(message)
            try:
                inserted = store.write_batch(rows, {AggregateKey(*k): n for k, n in counts})  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - reported; the parent stops
                conn.send_bytes(_encode(("error", f"{type(exc).__name__}: {exc}")))
                return
            conn.send_bytes(_encode(("ok", inserted)))
    finally:
        store.close()
