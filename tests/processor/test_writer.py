"""Where batches are written: the store process and inline writers, on a real SQLite file."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from stream_processor.processor.writer import (
    InlineStoreWriter,
    ProcessStoreWriter,
    StoreWriter,
    StoreWriterFailed,
)
from stream_processor.store.base import AggregateKey
from stream_processor.store.sqlite import SqliteEventStore
from tests.support.store import T0, row

pytestmark = pytest.mark.unit

KEY = AggregateKey(T0, "t1", "s1", "g1", "face_match", "granted", "stored")


def make(kind: str, path: Path) -> StoreWriter:
    factory = partial(SqliteEventStore, path)
    return ProcessStoreWriter(factory) if kind == "process" else InlineStoreWriter(factory)


@pytest.mark.parametrize("kind", ["process", "inline"])
def test_batches_are_written_in_order_and_counted(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"

    async def run() -> list[int]:
        writer = make(kind, path)
        await writer.open()
        try:
            inserted = []
            for b in range(5):
                rows = [row(b * 100 + i) for i in range(100)]
                inserted.append(await writer.submit(writer.begin(), rows, {KEY: 100}))
            # a batch again: the primary key drops every row, the count still adds up
            again = [row(i) for i in range(100)]
            inserted.append(await writer.submit(writer.begin(), again, {KEY: 100}))
            await writer.drain()
            return inserted
        finally:
            await writer.close()

    assert asyncio.run(run()) == [100] * 5 + [0]
    store = SqliteEventStore(path)
    try:
        assert store.count() == 500
        assert store.get("e-000042") == row(42)
        assert store.aggregates("t1", T0, T0 + 1) == {KEY: 600}
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
            writer.submit(first, rows, {})
            await asyncio.wait_for(drained, 30)
            probe = SqliteEventStore(path)
            try:
                seen_at_drain = probe.count()
            finally:
                probe.close()
            second = writer.begin()  # decided after the drain: not waited for
            await writer.submit(second, [row(5000)], {})
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


def test_a_failed_write_wakes_drain_with_the_error(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"

    async def run() -> None:
        writer = make("process", path)
        await writer.open()
        try:
            bad = [row(1)._replace(seq=None)]  # type: ignore[arg-type]  # NOT NULL: fails
            with pytest.raises(StoreWriterFailed, match="NOT NULL"):
                await writer.submit(writer.begin(), bad, {})
            writer.begin()
            with pytest.raises(StoreWriterFailed):
                await writer.drain()
        finally:
            await writer.close()

    asyncio.run(run())
