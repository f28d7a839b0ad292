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
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from stream_processor.processor.service import Decided, ProcessorService

if TYPE_CHECKING:
    from prometheus_client import Gauge

    from stream_processor.processor.currency import LedgerGate

log = logging.getLogger(__name__)


class KafkaInput:
    """``InputControl`` over an ``AIOKafkaConsumer``."""

    #: Lag is read at most this often: positions are local, but a gauge per fetch is waste.
    LAG_EVERY_S = 1.0

    def __init__(self, consumer: Any, lag: Gauge | None = None) -> None:
        self._consumer = consumer
        #: Pausers (the store's retry, the ledger gate) that have not resumed yet.
        self._pausers = 0
        self._fetching = False
        self._lag = lag
        self._lag_at = float("-inf")
        self._lag_reported: set[tuple[str, str]] = set()

    async def fetch(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        self._fetching = True
        try:
            fetched: dict[Any, list[Any]] = await self._consumer.getmany(
                timeout_ms=timeout_ms, max_records=max_records
            )
            await self._report_lag()
            return fetched
        finally:
            self._fetching = False

    async def _report_lag(self) -> None:
        """Per assigned partition: high watermark minus this worker's position.
        Partitions a rebalance took away lose their series (another worker reports them)."""
        now = time.monotonic()
        if self._lag is None or now - self._lag_at < self.LAG_EVERY_S:
            return
        self._lag_at = now
        seen: set[tuple[str, str]] = set()
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:  # no fetch answer for it yet
                continue
            position = await self._consumer.position(tp)
            labels = (tp.topic, str(tp.partition))
            self._lag.labels(*labels).set(max(0, high - position))
            seen.add(labels)
        for labels in self._lag_reported - seen:
            self._lag.remove(*labels)
        self._lag_reported = seen

    def pause(self) -> None:
        self._pausers += 1
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        self._pausers = max(0, self._pausers - 1)
        if self._pausers == 0:  # the other pauser's outage may still last
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
    lag: Gauge | None = None,
    gate: LedgerGate | None = None,
) -> None:
    """Consume until cancelled; ``consumer`` is started, ``before_first`` runs once
    before the first batch is decided (it opens the ledger views); ``lag`` gets the
    consumer lag per partition; ``gate`` holds each batch until the ledger views are
    current for it."""
    from aiokafka.errors import CommitFailedError, IllegalStateError

    source = KafkaInput(consumer, lag)
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
            fetched_at = time.monotonic()
            records = [r for batch in fetched.values() for r in batch]
            newest_ms = max(r.timestamp for r in records)
            if gate is not None and not await gate.is_current(fetched_at, newest_ms):
                # A withdrawal the consent view waits on waits in turn for the batch
                # in flight to be stored (ledgers.apply_consent): settle it first.
                if in_flight is not None:
                    flight, in_flight = in_flight, None
                    await settle(flight)
                await gate.wait_current(fetched_at, newest_ms, source)
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
