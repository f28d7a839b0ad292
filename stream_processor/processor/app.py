"""The Faust app of a processor worker; built by ``create_app`` in the composition root."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import faust

from stream_processor.dead_letter import DeadLetter
from stream_processor.processor.ingest import prepare_batch
from stream_processor.processor.settings import ProcessorSettings
from stream_processor.settings import StackSettings, Topics
from stream_processor.store.base import EventStore

log = logging.getLogger(__name__)


def create_app(
    stack: StackSettings,
    settings: ProcessorSettings,
    topics: Topics,
    store_factory: Callable[[], EventStore],
    clock: Callable[[], float] = time.time,
) -> faust.App:
    datadir = Path(stack.state_dir) / "processor" / settings.worker_name
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{stack.kafka_bootstrap}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_allow_declare=True,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        # An event whose processing raised must not be acked: it is retried
        # after a restart (at-least-once; writes are idempotent).
        stream_ack_exceptions=False,
        stream_ack_cancelled_tasks=False,
        producer_acks=-1,
        stream_wait_empty=True,
    )
    raw_topic = app.topic(topics.raw, value_serializer="raw", key_serializer="raw")
    dlq_topic = app.topic(topics.dlq, value_serializer="raw", key_serializer="raw")

    # concurrency=1: faust #606 can commit past an in-flight event otherwise.
    @app.agent(raw_topic, concurrency=1)
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        store = store_factory()
        try:
            async for values in stream.take(settings.batch_size, within=settings.batch_within_s):
                batch = prepare_batch(values, now_ms=int(clock() * 1000))
                for raw, reason, detail in batch.rejected:
                    await dlq_topic.send(value=dead_letter(raw, reason, detail, topics.raw, clock))
                inserted = store.put_many(batch.rows)
                log.debug("stored %d new of %d events", inserted, len(batch.rows))
        finally:
            store.close()

    return app


def dead_letter(
    raw: bytes, reason: str, detail: str, source: str, clock: Callable[[], float]
) -> bytes:
    return DeadLetter.build(raw, reason, detail, source, int(clock() * 1000), "processor").encode()
