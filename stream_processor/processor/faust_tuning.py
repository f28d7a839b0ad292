"""Faust parts of the stream workers: a monitor that matters for throughput (measured in
benchmarks/processor_bench.py) and a producer that surfaces a failed send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import faust
from aiokafka.structs import RecordMetadata
from faust.sensors import Monitor
from faust.transport.drivers.aiokafka import Producer as AiokafkaProducer
from faust.transport.drivers.aiokafka import Transport as AiokafkaTransport

from stream_processor.errors import BrokerError


class LeanMonitor(Monitor):
    """Faust's monitor without its per-message bookkeeping.

    The default monitor records every message and stream event in Python
    dictionaries; at tens of thousands of events a second that is a measurable
    share of a worker's CPU, and nothing here reads it (facegate exports its own
    Prometheus metrics). Commit, send and rebalance hooks are kept.
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None


class FailFastProducer(AiokafkaProducer):
    """Faust's aiokafka producer, made to surface a failed send.

    A send Faust does not await itself (a table's changelog write) fails with a
    logged warning only; and Faust flushes the producer before each offset commit
    but commits whether the flushed sends succeeded or not, so the offsets of the
    records behind a lost changelog write would be committed and the table
    restored without it. Here the first failed send makes every later flush raise:
    no offset is committed past it, and the worker stops with the error (its
    supervisor restarts it, and it reads again from the last commit).
    """

    _failed: BaseException | None = None

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Awaitable[RecordMetadata]:
        sent = await super().send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )
        if isinstance(sent, asyncio.Future):
            sent.add_done_callback(self._note_failure)
        return sent

    def _note_failure(self, sent: asyncio.Future[Any]) -> None:
        if self._failed is None and not sent.cancelled() and sent.exception() is not None:
            self._failed = sent.exception()

    async def flush(self) -> None:
        await super().flush()
        if self._failed is not None:
            raise SendFailed(self._failed)


class SendFailed(BrokerError):
    """A worker's send to Kafka failed: nothing is committed past it (``FailFastProducer``)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"a send to Kafka failed ({type(cause).__name__}: {cause}); stopping")
        self.__cause__ = cause


class FailFastTransport(AiokafkaTransport):
    Producer = FailFastProducer


def fail_fast(app: faust.App) -> faust.App:
    """``app`` with a ``FailFastProducer``; call before anything uses its transport."""
    app.transport = FailFastTransport(app.conf.broker_consumer, app)
    return app
