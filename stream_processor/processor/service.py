"""A processor worker's batch path behind small ports: decide, dead-letter, store.

    decide   raw records → rows, per-minute counts and refusals (``enforce_batch``);
             every refusal is in the dead-letter topic, with its Kafka coordinates,
             when this returns
    store    one transaction for the whole batch (the normal path). If the store
             refuses the data, the batch is bisected until the records it refuses
             are alone; those are quarantined (reason ``store_refused``) and every
             other record is stored. If the store is unavailable (down, full,
             locked), nothing is quarantined: input is paused and the same write is
             retried with back-off until the store is back.

Nothing here knows Kafka or Faust: the ingest loop (``ingest.py``) feeds records
and pauses its consumer through ``InputControl``; tests drive it in-process.
Logs and dead letters never quote a record's fields (they may hold a pseudonym).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from edge_agent.wire import decode_event
from stream_processor.processor.enforce import (
    ConsentLookup,
    Decoder,
    EnforcedBatch,
    PolicyLookup,
    RawRecord,
    enforce_batch,
)
from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.processor.writer import StoreWriter
from stream_processor.quarantine import Coordinates, Quarantine, Refusal
from stream_processor.store.base import StoreDataError, StoreUnavailable

log = logging.getLogger(__name__)

#: Reason of a record whose row (or count) the store refused even alone.
STORE_REFUSED = "store_refused"
_PSEUDONYM = re.compile(r"ps1_[0-9a-fA-F]{4,32}")


class DeadLetterSink(Protocol):
    """Writes one dead letter and returns once the broker has it (acks=all)."""

    async def send(self, key: bytes, value: bytes) -> None: ...


class InputControl(Protocol):
    """How the service stops the flow of input while the store is unavailable."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    async def keep_alive(self) -> None:
        """Called while paused: stay a member of the consumer group, take nothing."""
        ...


class NoInputControl:
    """For callers that take no further input while they await ``store`` anyway."""

    def pause(self) -> None:
        return None

    def resume(self) -> None:
        return None

    async def keep_alive(self) -> None:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    first_s: float = 0.5
    max_s: float = 30.0
    #: How often ``keep_alive`` is called while waiting (below max.poll.interval.ms).
    keep_alive_s: float = 5.0


@dataclass
class Decided:
    """One decided batch, with what ``store`` needs to isolate a refused record."""

    records: Sequence[RawRecord]
    batch: EnforcedBatch
    now_ms: int
    started: float


def store_detail(exc: BaseException) -> str:
    """The store's refusal without anything it may have quoted from the row."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return _PSEUDONYM.sub("ps1_<redacted>", first)[:300]


class ProcessorService:
    def __init__(
        self,
        writer: StoreWriter,
        dead_letters: DeadLetterSink,
        quarantine: Quarantine,
        metrics: ProcessorMetrics,
        *,
        policy_of: PolicyLookup,
        consent_of: ConsentLookup,
        decode: Decoder = decode_event,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.writer = writer
        self._sink = dead_letters
        self._quarantine = quarantine
        self._metrics = metrics
        self._policy_of = policy_of
        self._consent_of = consent_of
        self._decode = decode
        self._retry = retry
        self._clock = clock
        self._sleep = sleep

    async def decide(self, records: Sequence[RawRecord]) -> Decided:
        """Decide one batch; its refusals are in the dead-letter topic when this returns."""
        started = time.perf_counter()
        now_ms = int(self._clock() * 1000)
        batch = enforce_batch(records, now_ms, self._policy_of, self._consent_of, self._decode)
        if batch.rejected:
            await asyncio.gather(
                *(
                    self._dead_letter(records[i], Refusal(reason, detail))
                    for i, reason, detail in batch.rejected
                )
            )
        return Decided(records, batch, now_ms, started)

    async def store(self, decided: Decided, control: InputControl) -> int:
        """Store a decided batch; returns how many rows were new. Returns only when
        every record is stored or quarantined (the caller may commit past them)."""
        batch = decided.batch
        try:
            inserted = await self._write(batch, control)
        except StoreDataError:
            inserted = await self._isolate(decided.records, decided.now_ms, control)
        for (kind, outcome), n in batch.outcomes.items():
            self._metrics.decisions.labels(kind, outcome).inc(n)
        if inserted < len(batch.rows):
            self._metrics.stored_duplicates.inc(len(batch.rows) - inserted)
        self._metrics.batch_seconds.observe(time.perf_counter() - decided.started)
        return inserted

    async def _write(self, batch: EnforcedBatch, control: InputControl) -> int:
        """One transaction, retried while the store is unavailable (input paused
        meanwhile); raises ``StoreDataError`` when the store refuses the data."""
        delay = self._retry.first_s
        paused = False
        try:
            while True:
                try:
                    return await self.writer.write(batch.rows, batch.counts, batch.counted)
                except StoreUnavailable as exc:
                    if not paused:
                        control.pause()
                        paused = True
                        self._metrics.store_unavailable.set(1)
                    self._metrics.store_retries.inc()
                    # The message names the engine's error, never a row.
                    log.warning("store unavailable (%s); input paused, retrying in %.1fs",
                                store_detail(exc), delay)  # fmt: skip
                    await self._wait(delay, control)
                    delay = min(delay * 2, self._retry.max_s)
        finally:
            if paused:
                self._metrics.store_unavailable.set(0)
                control.resume()
                log.warning("store available again; input resumed")

    async def _wait(self, delay: float, control: InputControl) -> None:
        waited = 0.0
        while waited < delay:
            step = min(self._retry.keep_alive_s, delay - waited)
            await self._sleep(step)
            waited += step
            await control.keep_alive()

    async def _isolate(
        self, records: Sequence[RawRecord], now_ms: int, control: InputControl
    ) -> int:
        """Bisect until each record the store refuses is alone; store the rest.

        Each part is decided again (same clock; its refusals were dead-lettered by
        ``decide`` already and are left out here) and written in a transaction of
        its own, so every stored row and count is written exactly once."""
        part = enforce_batch(records, now_ms, self._policy_of, self._consent_of, self._decode)
        try:
            return await self._write(part, control)
        except StoreDataError as exc:
            if len(records) == 1:
                await self._dead_letter(records[0], Refusal(STORE_REFUSED, store_detail(exc)))
                return 0
        mid = len(records) // 2
        first = await self._isolate(records[:mid], now_ms, control)
        return first + await self._isolate(records[mid:], now_ms, control)

    async def _dead_letter(self, record: RawRecord, refusal: Refusal) -> None:
        at = Coordinates(record.topic, record.partition, record.offset)
        try:
            key, value = self._quarantine.letter(record.value, refusal, at)
        except Exception as exc:  # noqa: BLE001 - the letter, then, keeps none of the bytes
            log.error("dead letter of %s/%d/%d built without its bytes (%s)",
                      at.topic, at.partition, at.offset, type(exc).__name__)  # fmt: skip
            key, value = self._quarantine.letter(None, refusal, at)
        delay = self._retry.first_s
        while True:
            try:
                await self._sink.send(key, value)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker is out: wait, never drop
                log.warning("dead letter not written (%s); retrying in %.1fs",
                            type(exc).__name__, delay)  # fmt: skip
                await self._sleep(delay)
                delay = min(delay * 2, self._retry.max_s)
        self._quarantine.counted(refusal, at)
        self._metrics.dead_letters.labels(refusal.reason).inc()
