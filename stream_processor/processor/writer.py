"""Where a worker's batches are written: in a store process of its own, or inline.

``process`` (default): a child process owns the store connection. While it
writes batch N, the worker's event loop fetches and decides batch N+1, on the
other core. A thread would not do: SQLite releases the GIL around every row's
``sqlite3_step`` and must win it back from the busy event loop each time, and
a thread writer measured *slower* than writing inline (docs/processor.md).
Batches cross the pipe as msgpack (~1 µs per row; pickling the rows cost 8).

``inline``: the write runs on the event loop (one core).

A failed write raises ``StoreDataError`` (the rows' fault: the caller isolates
them) or ``StoreUnavailable`` (the store's: the caller waits and writes the same
rows again). Either way the writer stays usable; after ``StoreUnavailable`` it
opens a new store connection for the next write (a new store process, if the
old one died).

Batches are written one at a time, in the order they were decided. A consent
withdrawal must not be overtaken by a batch decided before it: the withdrawal
first calls ``drain()``, which waits until every batch decided so far
(``begin()`` is called before deciding) is ``complete``d, and only then deletes
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
from stream_processor.store.base import (
    AggregateKey,
    CountedEvent,
    EventStore,
    StoreDataError,
    StoredEvent,
    StoreUnavailable,
    close_quietly,
)

StoreFactory = Callable[[], EventStore]


class StoreWriterFailed(StoreError):
    """The writer stopped (closed, or its process died); nothing more will be written."""


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
        self,
        rows: Sequence[StoredEvent],
        counts: Mapping[AggregateKey, int],
        counted: Sequence[CountedEvent] = (),
    ) -> asyncio.Future[int]:
        raise NotImplementedError

    def begin(self) -> int:
        """Call before deciding a batch; pass the ticket to ``complete`` once it is stored."""
        self._decided += 1
        return self._decided

    def write(
        self,
        rows: Sequence[StoredEvent],
        counts: Mapping[AggregateKey, int],
        counted: Sequence[CountedEvent] = (),
    ) -> asyncio.Future[int]:
        """Start one transaction; the future gives how many rows were new."""
        if self._error is not None:
            raise StoreWriterFailed("the store writer failed earlier") from self._error
        return self._write(rows, counts, counted)

    def complete(self, ticket: int) -> None:
        """Every row of the batch ``ticket`` is stored (or quarantined): wake ``drain``."""
        self._written = max(self._written, ticket)
        self._changed.set()

    def fail(self, error: BaseException) -> None:
        """A batch was begun but will never be stored: wake ``drain`` with the error."""
        self._error = error
        self._changed.set()

    async def drain(self) -> None:
        """Wait until every batch decided so far is stored."""
        target = self._decided
        while self._written < target:
            if self._error is not None:
                raise StoreWriterFailed("the store writer failed") from self._error
            self._changed.clear()
            await self._changed.wait()


def classify(exc: Exception) -> StoreError:
    """A store's exception as the writer reports it (stores raise the typed ones;
    anything else, e.g. a connection that could not be made, means unavailable)."""
    if isinstance(exc, (StoreDataError, StoreUnavailable)):
        return exc
    return StoreUnavailable(f"{type(exc).__name__}: {exc}")


class InlineStoreWriter(StoreWriter):
    """Writes on the event loop (blocking it for the transaction)."""

    def __init__(self, store_factory: StoreFactory) -> None:
        super().__init__()
        self._factory = store_factory
        self._store: EventStore | None = None
        self._open = False

    async def open(self) -> None:
        self._store = self._factory()
        self._open = True

    def _write(
        self,
        rows: Sequence[StoredEvent],
        counts: Mapping[AggregateKey, int],
        counted: Sequence[CountedEvent] = (),
    ) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not self._open:
            future.set_exception(StoreWriterFailed("the store writer is not open"))
            return future
        try:
            if self._store is None:
                self._store = self._factory()
            future.set_result(self._store.write_batch(rows, counts, counted))
        except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the write
            error = classify(exc)
            if isinstance(error, StoreUnavailable):
                self._drop_store()
            future.set_exception(error)
        return future

    def _drop_store(self) -> None:
        store, self._store = self._store, None
        close_quietly(store)

    async def close(self) -> None:
        self._open = False
        self._drop_store()


_encode = msgspec.msgpack.Encoder().encode
_STOP = b""
#: Reply kinds from the writer process.
_OK, _DATA, _DOWN = "ok", "data", "down"


class ProcessStoreWriter(StoreWriter):
    """Writes in a child process that owns the store (``store_factory`` must pickle)."""

    def __init__(self, store_factory: StoreFactory) -> None:
        super().__init__()
        self._factory = store_factory
        self._conn: Connection | None = None
        self._process: Any = None
        #: The child exited; the next write starts a new one.
        self._dead = False
        self._closed = False
        # One thread that only waits for the child's replies (blocked in recv,
        # it does not hold the GIL); replies come back in the order sent.
        self._replies = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-replies")

    async def open(self) -> None:
        try:
            await self._start()
        except StoreError as exc:
            raise StoreWriterFailed(f"the store writer process could not start: {exc}") from exc

    async def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process with a running loop
        parent, child = ctx.Pipe()
        self._process = ctx.Process(
            target=serve, args=(child, self._factory), name="facegate-store-writer", daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent
        self._dead = False
        await asyncio.get_running_loop().run_in_executor(self._replies, self._reply)

    async def _restart_and_write(self, message: bytes) -> int:
        """The child died (killed, out of memory): an outage of the store, not the rows'
        fault. Start a new one and send it the batch; if it cannot start, say unavailable."""
        self._stop_child()
        await self._start()
        assert self._conn is not None
        self._conn.send_bytes(message)
        return await asyncio.get_running_loop().run_in_executor(self._replies, self._reply)

    def _stop_child(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._process is not None and self._process.is_alive():
            self._process.kill()

    def _reply(self) -> int:
        assert self._conn is not None
        try:
            status, value = msgspec.msgpack.decode(self._conn.recv_bytes())
        except (EOFError, OSError):
            self._dead = True
            raise StoreUnavailable("the store writer process exited") from None
        if status == _DATA:
            raise StoreDataError(str(value))
        if status == _DOWN:
            raise StoreUnavailable(str(value))
        return int(value)

    def _write(
        self,
        rows: Sequence[StoredEvent],
        counts: Mapping[AggregateKey, int],
        counted: Sequence[CountedEvent] = (),
    ) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        if self._closed:
            future.set_exception(StoreWriterFailed("the store writer is closed"))
            return future
        try:
            message = _encode((rows, list(counts.items()), counted))
        except (OverflowError, ValueError, TypeError) as exc:
            # A value the pipe's codec cannot carry cannot be stored either.
            future.set_exception(StoreDataError(f"{type(exc).__name__}: {exc}"))
            return future
        if self._dead or self._conn is None:
            return asyncio.ensure_future(self._restart_and_write(message))
        try:
            self._conn.send_bytes(message)
        except OSError:  # the child is gone: its pipe is closed
            return asyncio.ensure_future(self._restart_and_write(message))
        return loop.run_in_executor(self._replies, self._reply)

    async def close(self) -> None:
        self._closed = True
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


def _reply_error(conn: Connection, error: StoreError) -> None:
    kind = _DATA if isinstance(error, StoreDataError) else _DOWN
    conn.send_bytes(_encode((kind, str(error))))


def serve(conn: Connection, store_factory: StoreFactory) -> None:
    """The writer process: one batch at a time until the stop message or the
    parent's end of the pipe closes (the parent died). A failed write is reported
    and the process goes on; after an unavailable store it reconnects on the next."""
    # Ctrl-C and SIGTERM go to the parent, which stops us after its last batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        store: EventStore | None = store_factory()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which gives up
        _reply_error(conn, classify(exc))
        return
    decode = msgspec.msgpack.Decoder(
        tuple[list[list[Any]], list[tuple[list[Any], int]], list[tuple[str, list[Any]]]]
    ).decode
    try:
        conn.send_bytes(_encode((_OK, 0)))
        while True:
            try:
                message = conn.recv_bytes()
            except EOFError:
                return
            if message == _STOP:
                return
            store = _serve_one(conn, store, store_factory, decode(message))
    finally:
        if store is not None:
            store.close()


def _serve_one(
    conn: Connection,
    store: EventStore | None,
    store_factory: StoreFactory,
    batch: tuple[list[list[Any]], list[tuple[list[Any], int]], list[tuple[str, list[Any]]]],
) -> EventStore | None:
    """Write one batch and reply; returns the store to use next (None: reconnect)."""
    rows, counts, counted = batch
    try:
        if store is None:
            store = store_factory()
        inserted = store.write_batch(
            rows,  # type: ignore[arg-type]
            {AggregateKey(*k): n for k, n in counts},
            counted,  # type: ignore[arg-type]
        )
    except Exception as exc:  # noqa: BLE001 - reported; the parent decides what follows
        error = classify(exc)
        _reply_error(conn, error)
        if isinstance(error, StoreUnavailable) and store is not None:
            close_quietly(store)
            return None
        return store
    conn.send_bytes(_encode((_OK, inserted)))
    return store
