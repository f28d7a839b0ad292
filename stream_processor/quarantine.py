"""Keeps a consumer alive through its input: a record it cannot take is quarantined, a
failure of its own store or broker is waited out.

    Refusal          a reader's "no" as a value: a bounded reason and a detail
    Coordinates      where a record sits in Kafka (topic, partition, offset)
    classify         an exception → OUTAGE (wait and retry), POISON (quarantine), UNKNOWN
                     (``failures``)
    Attempts         one record's tries: how long to wait next, or that it is poison
    ConsumerMetrics  quarantined records by reason, outage retries, a "waiting" gauge
    Quarantine       turns a refusal into a dead letter (reason + coordinates) and counts it
    guard            runs one record's handler under these rules (``guard_blocking`` for
                     consumers on a thread of their own)
    KafkaDeadLetters the blocking dead-letter sink of kafka-python consumers
                     (``kafka_dead_letters``)

An outage never quarantines: the record is retried with back-off and, meanwhile, the
consumer takes no further input (the caller awaits ``guard``), so nothing is lost and
nothing is committed past it. A poison record is dead-lettered, then the caller goes on
and commits past it. An exception of a kind not known to be either is retried a few
times (a transient hiccup succeeds) and then treated as poison: one record must never
hold a consumer forever.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from stream_processor.dead_letter import DeadLetter
from stream_processor.failures import Failure, classify
from stream_processor.kafka_dead_letters import KafkaDeadLetters

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """Why a record is not taken. ``reason`` is a short code from a bounded set (it is a
    metrics label); ``detail`` never quotes the record (it may hold a pseudonym)."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Coordinates:
    topic: str
    partition: int
    offset: int


class ConsumerMetrics:
    """One set per process, shared by its consumers (label ``consumer``: a fixed name)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.quarantined = Counter(
            "facegate_consumer_quarantined_total",
            "records a consumer could not take, dead-lettered with their Kafka coordinates",
            ["consumer", "reason"],
            registry=registry,
        )
        self.outage_retries = Counter(
            "facegate_consumer_outage_retries_total",
            "retries of a record after the consumer's own store or broker failed",
            ["consumer"],
            registry=registry,
        )
        self.waiting = Gauge(
            "facegate_consumer_waiting_on_outage",
            "1 while a consumer takes no input because its store or broker is failing",
            ["consumer"],
            registry=registry,
        )


@functools.cache
def process_metrics() -> ConsumerMetrics:
    """The process's one set on the default registry (for consumers built without one)."""
    return ConsumerMetrics(REGISTRY)


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.5
    max_s: float = 30.0
    #: Tries of an exception that is neither a known outage nor known poison.
    unknown_tries: int = 3


class Attempts:
    """The tries of one record: ``after(exc)`` says how long to wait, or that it is poison."""

    def __init__(self, consumer: str, metrics: ConsumerMetrics, backoff: Backoff) -> None:
        self._consumer = consumer
        self._metrics = metrics
        self._backoff = backoff
        self._delay = backoff.first_s
        self._tries = 0

    def after(self, exc: BaseException) -> float | Refusal:
        self._tries += 1
        kind = classify(exc)
        name = type(exc).__name__
        if kind is Failure.POISON or (
            kind is Failure.UNKNOWN and self._tries >= self._backoff.unknown_tries
        ):
            # Only the type: an exception's message may quote the record.
            return Refusal("unprocessable", f"{self._consumer} raised {name}")
        delay, self._delay = self._delay, min(self._delay * 2, self._backoff.max_s)
        self._metrics.outage_retries.labels(self._consumer).inc()
        self._metrics.waiting.labels(self._consumer).set(1)
        log.warning("%s: %s (%s); input paused, retrying in %.1fs",
                    self._consumer, kind.value, name, delay)  # fmt: skip
        return delay

    def done(self) -> None:
        """The record (or connection) went through: the next failure starts afresh."""
        if self._tries:
            self._metrics.waiting.labels(self._consumer).set(0)
        self._tries, self._delay = 0, self._backoff.first_s


class DeadLetterSink(Protocol):
    """Writes one dead letter and returns once the broker has it (acks=all)."""

    async def send(self, key: bytes, value: bytes) -> None: ...


class BlockingDeadLetterSink(Protocol):
    def send(self, key: bytes, value: bytes) -> None: ...


class Quarantine:
    """The dead letters of one consumer. ``keep_bytes=False`` for topics whose records
    hold a pseudonym in fields the redaction cannot recognise (the ledgers, requests)."""

    def __init__(
        self,
        consumer: str,
        metrics: ConsumerMetrics,
        *,
        keep_bytes: bool = True,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.consumer = consumer
        self.metrics = metrics
        self.backoff = backoff
        self._keep_bytes = keep_bytes
        self._clock = clock

    def attempts(self) -> Attempts:
        return Attempts(self.consumer, self.metrics, self.backoff)

    def letter(self, raw: bytes | None, refusal: Refusal, at: Coordinates) -> tuple[bytes, bytes]:
        """The dead letter's key and value."""
        data = (raw or b"") if self._keep_bytes else b""
        letter = DeadLetter.build(
            data, refusal.reason, refusal.detail, at.topic, int(self._clock() * 1000),
            self.consumer, partition=at.partition, offset=at.offset,
        )  # fmt: skip
        return refusal.reason.encode(), letter.encode()

    def counted(self, refusal: Refusal, at: Coordinates, sent: Refusal | None = None) -> None:
        """Count a quarantined record; ``sent`` is a refusal of its dead letter itself."""
        self.metrics.quarantined.labels(self.consumer, refusal.reason).inc()
        if sent is not None:  # the broker refused the letter as data: say so, go on
            log.error("%s: dead letter of %s/%d/%d not written (%s)", self.consumer,
                      at.topic, at.partition, at.offset, sent.detail)  # fmt: skip
        log.warning("%s: record %s/%d/%d quarantined: %s", self.consumer, at.topic,
                    at.partition, at.offset, refusal.reason)  # fmt: skip


async def _until_done(
    step: Callable[[], Awaitable[T]], q: Quarantine, sleep: Callable[[float], Awaitable[None]]
) -> T | Refusal:
    attempts = q.attempts()
    while True:
        try:
            result = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified: waited out or quarantined
            wait = attempts.after(exc)
            if isinstance(wait, Refusal):
                attempts.done()
                return wait
            await sleep(wait)
        else:
            attempts.done()
            return result


async def guard(
    handle: Callable[[], Awaitable[Refusal | None]],
    raw: bytes | None,
    at: Coordinates,
    q: Quarantine,
    sink: DeadLetterSink,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Refusal | None:
    """Handle one record; on a refusal (returned, or poison raised) write its dead letter.
    Returns only when the record is taken or quarantined: the caller may commit past it."""
    refusal = await _until_done(handle, q, sleep)
    if refusal is None:
        return None
    key, value = q.letter(raw, refusal, at)
    # A failing DLQ write is an outage of the broker: waited out like any other.
    q.counted(refusal, at, await _until_done(lambda: sink.send(key, value), q, sleep))
    return refusal


async def guard_each(
    events: AsyncIterable[Any],
    take: Callable[[bytes | None, bytes | None, Coordinates], Awaitable[Refusal | None]],
    q: Quarantine,
    sink: DeadLetterSink,
    keep_raw: bool = True,
) -> None:
    """``guard`` over every record of a Faust stream (``stream.events()``), in order.
    ``keep_raw=False``: the dead letter gets no byte of the record, whatever ``q`` keeps."""
    async for event in events:
        message = event.message
        at = Coordinates(message.topic, message.partition, message.offset)
        key, value = event.key, event.value
        await guard(lambda: take(key, value, at), value if keep_raw else None, at, q, sink)  # noqa: B023 - awaited here


def _until_done_blocking(
    step: Callable[[], T], q: Quarantine, sleep: Callable[[float], None]
) -> T | Refusal:
    attempts = q.attempts()
    while True:
        try:
            result = step()
        except Exception as exc:  # noqa: BLE001 - classified: waited out or quarantined
            wait = attempts.after(exc)
            if isinstance(wait, Refusal):
                attempts.done()
                return wait
            sleep(wait)
        else:
            attempts.done()
            return result


def guard_blocking(
    handle: Callable[[], Refusal | None],
    raw: bytes | None,
    at: Coordinates,
    q: Quarantine,
    sink: BlockingDeadLetterSink,
    sleep: Callable[[float], None] = time.sleep,
) -> Refusal | None:
    """``guard`` for a consumer on a thread of its own (kafka-python)."""
    refusal = _until_done_blocking(handle, q, sleep)
    if refusal is None:
        return None
    key, value = q.letter(raw, refusal, at)
    q.counted(refusal, at, _until_done_blocking(lambda: sink.send(key, value), q, sleep))
    return refusal


# Failure, classify and KafkaDeadLetters: re-exported for the consumers importing them here.
__all__ = [
    "Attempts",
    "Backoff",
    "BlockingDeadLetterSink",
    "ConsumerMetrics",
    "Coordinates",
    "DeadLetterSink",
    "Failure",
    "KafkaDeadLetters",
    "Quarantine",
    "Refusal",
    "classify",
    "guard",
    "guard_blocking",
    "guard_each",
    "process_metrics",
]
