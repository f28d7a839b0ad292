"""Where batches are written: the store process and inline writers, on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial
from pathlib import Path

import pytest

from stream_processor.processor.writer import (
    InlineStoreWriter,
    ProcessStoreWriter,
    StoreWriter,
    StoreWriterFailed,
)
from stream_processor.store.base import (
    AggregateKey,
    CountedEvent,
    StoreDataError,
    StoredEvent,
    StoreUnavailable,
    row_cell,
)
from stream_processor.store.sqlite import SqliteEventStore
from tests.support.store import T0, row

pytestmark = pytest.mark.unit

KEY = AggregateKey(T0, "t1", "s1", "g1", "face_match", "granted", "stored")


def make(kind: str, path: Path) -> StoreWriter:
    factory = partial(SqliteEventStore, path)
    return ProcessStoreWriter(factory) if kind == "process" else InlineStoreWriter(factory)


def cells(rows: list[StoredEvent], counted: list[CountedEvent]) -> dict[AggregateKey, int]:
    out = Counter(row_cell(r) for r in rows)
    out.update(AggregateKey._make(cell) for _, cell in counted)
    return dict(out)


@pytest.mark.parametrize("kind", ["process", "inline"])
def test_batches_are_written_in_order_and_counted(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    refused = tuple(AggregateKey(T0, "t1", "s1", "g1", "unknown_face", "denied", "no_match"))

    def batch(b: int) -> tuple[list[StoredEvent], list[CountedEvent]]:
        rows = [row(b * 100 + i) for i in range(100)]
        return rows, [(f"c-{b * 10 + i}", refused) for i in range(10)]  # type: ignore[misc]

    async def run() -> list[int]:
        writer = make(kind, path)
        await writer.open()
        try:
            inserted = []
            # the last batch again: its rows and counted ids were written, so it adds nothing
            for b in [0, 1, 2, 3, 4, 0]:
                rows, counted = batch(b)
                ticket = writer.begin()
                inserted.append(await writer.write(rows, cells(rows, counted), counted))
                writer.complete(ticket)
            await writer.drain()
            return inserted
        finally:
            await writer.close()

    assert asyncio.run(run()) == [100] * 5 + [0]
    store = SqliteEventStore(path)
    try:
        assert store.count() == 500
        assert store.get("e-000042") == row(42)
        every = [batch(b) for b in range(5)]
        expected = cells([r for rs, _ in every for r in rs], [c for _, cs in every for c in cs])
        assert store.aggregates("t1", 0) == expected
    finally:
        store.close()


def test_drain_waits_for_every_batch_decided_before_it(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"

    async def run() -> tuple[int, int]:
        writer = make("process", path)
        await writer.open()
        try:
            first = writer.begin()  # decided, not yet submitted
            drained = asyncio.ensure_future(writer.drain())
            await asyncio.sleep(0.2)
            assert not drained.done()
            rows = [row(i) for i in range(2000)]
            await writer.write(rows, {})
            assert not drained.done()  # written, not yet complete: a retry may follow
            writer.complete(first)
            await asyncio.wait_for(drained, 30)
            probe = SqliteEventStore(path)
            try:
                seen_at_drain = probe.count()
            finally:
                probe.close()
            second = writer.begin()  # decided after the drain: not waited for
            await writer.write([row(5000)], {})
            return seen_at_drain, second
        finally:
            await writer.close()

    seen, _ = asyncio.run(run())
    assert seen == 2000


def test_a_store_that_cannot_open_fails_loudly(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the store's folder should be")

    async def run() -> None:
        writer = make("process", blocked / "events.sqlite")
        try:
            await writer.open()
        finally:
            await writer.close()

    with pytest.raises(StoreWriterFailed, match="writer process"):
        asyncio.run(run())


@pytest.mark.parametrize("kind", ["process", "inline"])
def test_a_refused_write_is_a_data_error_and_the_writer_goes_on(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"

    async def run() -> int:
        writer = make(kind, path)
        await writer.open()
        try:
            bad = [row(1)._replace(seq=None)]  # type: ignore[arg-type]  # NOT NULL: fails
            with pytest.raises(StoreDataError, match="NOT NULL"):
                await writer.write(bad, {})
            huge = [row(2)._replace(seq=2**64)]  # beyond every codec and store
            with pytest.raises(StoreDataError):
                await writer.write(huge, {})
            return await writer.write([row(3)], {})
        finally:
            await writer.close()

    assert asyncio.run(run()) == 1


class GatedStore(SqliteEventStore):
    """A real SQLite store that is "down" while a flag file exists (module level: the
    writer process receives its factory pickled)."""

    def __init__(self, path: Path, down_flag: Path) -> None:
        if down_flag.exists():
            raise OSError("connection refused")  # what a driver raises: not a StoreError
        super().__init__(path)
        self._down = down_flag

    def write_batch(self, rows, counts, counted=()):  # type: ignore[no-untyped-def]
        if self._down.exists():
            raise StoreUnavailable("the server is down")
        return super().write_batch(rows, counts, counted)


@pytest.mark.parametrize("kind", ["process", "inline"])
def test_an_unavailable_store_is_reported_and_reopened(kind: str, tmp_path: Path) -> None:
    """Writes fail as unavailable (never as the rows' fault), the store is reopened
    (its factory failing too meanwhile), and the same rows are written once it is back."""
    path, flag = tmp_path / "events.sqlite", tmp_path / "down"
    factory = partial(GatedStore, path, flag)

    async def run() -> tuple[int, int]:
        writer = ProcessStoreWriter(factory) if kind == "process" else InlineStoreWriter(factory)
        await writer.open()
        try:
            first = await writer.write([row(1)], {})
            flag.touch()
            for _ in range(2):  # the write, then the reconnect, fail
                with pytest.raises(StoreUnavailable):
                    await writer.write([row(2)], {KEY: 1})
            flag.unlink()
            return first, await writer.write([row(2)], {KEY: 1})
        finally:
            await writer.close()

    assert asyncio.run(run()) == (1, 1)
    store = SqliteEventStore(path)
    try:
        assert store.count() == 2
        assert store.aggregates("t1", T0, T0 + 1) == {KEY: 1}
    finally:
        store.close()


def test_drain_raises_when_a_begun_batch_will_never_be_stored(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"

    async def run() -> None:
        writer = make("inline", path)
        await writer.open()
        try:
            writer.begin()
            writer.fail(RuntimeError("decide failed"))
            with pytest.raises(StoreWriterFailed):
                await writer.drain()
        finally:
            await writer.close()

    asyncio.run(run())


def test_a_store_process_that_dies_is_an_outage_and_is_replaced(tmp_path: Path) -> None:
    import os
    import signal

    path = tmp_path / "events.sqlite"

    async def run() -> list[str]:
        writer = ProcessStoreWriter(partial(SqliteEventStore, path))
        await writer.open()
        fates = []
        try:
            await writer.write([row(1)], {})
            os.kill(writer._process.pid, signal.SIGKILL)  # the OOM killer, say
            writer._process.join(10)
            for _ in range(2):  # the write that finds it dead may fail; the next restarts it
                try:
                    fates.append(f"stored {await writer.write([row(2)], {KEY: 1})}")
                    break
                except StoreUnavailable:
                    fates.append("unavailable")
            return fates
        finally:
            await writer.close()

    fates = asyncio.run(run())
    assert fates[-1] == "stored 1" and set(fates[:-1]) <= {"unavailable"}
    store = SqliteEventStore(path)
    try:
        assert store.count() == 2
    finally:
        store.close()
