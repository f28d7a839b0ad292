"""The raw-event loop of a worker: batches straight from aiokafka, through the service.

Faust streams cost tens of microseconds per event before our code runs
(docs/benchmarks.md, Processor), so raw events are read in batches with
aiokafka instead. At least once: a batch's offsets are committed only when each
of its records is stored or quarantined, and batches are stored in the order
they were read. While batch N is written (by default in the worker's store
process), batch N+1 is fetched and decided.

While the store is unavailable the service pauses every assigned partition and
calls ``keep_alive``, which polls (without taking records) so the worker stays
in its consumer group however long the outage lasts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from stream_processor.processor.service import Decided, ProcessorService

log = logging.getLogger(__name__)


class KafkaInput:
    """``InputControl`` over an ``AIOKafkaConsumer``."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._paused = False
        self._fetching = False

    async def fetch(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        self._fetching = True
        try:
            fetched: dict[Any, list[Any]] = await self._consumer.getmany(
                timeout_ms=timeout_ms, max_records=max_records
            )
            return fetched
        finally:
            self._fetching = False

    def pause(self) -> None:
        self._paused = True
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        self._paused = False
        self._consumer.resume(*self._consumer.paused())

    async def keep_alive(self) -> None:
        if self._fetching:
            return  # the loop's own poll keeps the membership
        # A rebalance may have assigned partitions since the pause.
        self._consumer.pause(*self._consumer.assignment())
        fetched = await self.fetch(0, 1)
        for tp, records in fetched.items():
            if records:  # read before its pause took effect: read it again later
                self._consumer.seek(tp, records[0].offset)


#: How long a stopping worker waits for its last batch (the store may be down).
LAST_WRITE_S = 30.0

Settling = tuple["asyncio.Task[int]", int, dict[Any, int]]


async def run_ingest(
    consumer: Any,
    service: ProcessorService,
    *,
    batch_size: int,
    batch_within_s: float,
    before_first: Callable[[], Awaitable[None]],
) -> None:
    """Consume until cancelled; ``consumer`` is started, ``before_first`` runs once
    before the first batch is decided (it opens the ledger views)."""
    from aiokafka.errors import CommitFailedError, IllegalStateError

    source = KafkaInput(consumer)
    writer = service.writer
    in_flight: Settling | None = None

    async def settle(flight: Settling) -> None:
        task, ticket, offsets = flight
        await task
        writer.complete(ticket)
        # A rebalance may have moved a partition away while its batch was
        # written: its new owner reads those records again (at least once;
        # the store drops the duplicates), so commit only what is still ours.
        assigned = consumer.assignment()
        mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if mine:
            try:
                await consumer.commit(mine)
            except (CommitFailedError, IllegalStateError) as exc:
                log.warning("offsets not committed, the group rebalanced: %s", exc)

    await before_first()
    timeout_ms = int(batch_within_s * 1000)
    try:
        while True:
            fetched = await source.fetch(timeout_ms, batch_size)
            if not fetched:
                if in_flight is not None:
                    flight, in_flight = in_flight, None
                    await settle(flight)
                continue
            records = [r for batch in fetched.values() for r in batch]
            offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items()}
            ticket = writer.begin()
            try:
                decided: Decided = await service.decide(records)
            except BaseException as exc:
                writer.fail(exc)
                raise
            if in_flight is not None:
                flight, in_flight = in_flight, None
                await settle(flight)
            task = asyncio.ensure_future(service.store(decided, source))
            in_flight = (task, ticket, offsets)
    finally:
        if in_flight is not None:  # let the last write finish and commit it
            try:
                await asyncio.wait_for(settle(in_flight), LAST_WRITE_S)
            except TimeoutError:
                log.warning("last batch not stored before shutdown; it will be read again")
