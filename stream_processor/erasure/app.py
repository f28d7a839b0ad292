"""The Faust app of the erasure worker: two thin agents and a timer over ``ErasureService``.

- ``requests``  the erasure topic (one partition, keyed by request id) → ``on_request``
- ``acks``      device acknowledgements (``facegate.edge.acks``) → ``on_ack``
- ``tick``      every ``FACEGATE_ERASURE_TICK_S``: re-send, resume, gauges
- ``ledger_heartbeat``  every ``segment.ms / 2``: rolls the consent and policies
                ledgers' segments so compaction keeps the receipts' bound
                (``ledger_heartbeat.py`` says why this worker writes it)

Progress lives in SQLite (``ErasureBook``), not in a Faust table: a table's
changelog would be one more Kafka topic holding pseudonyms, and a pending
erasure may wait weeks for a device. At-least-once: every step is idempotent.

Both topics can be written around the bridge (office tools, a hostile producer): each
record goes through ``quarantine.guard``. One the worker cannot take is dead-lettered
with its coordinates and passed; a failing store, rights database or broker holds the
agent on that record (no further input) and is retried with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import faust

from stream_processor.erasure.ledger_heartbeat import LedgerHeartbeat, heartbeat_interval_s
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.service import Deps, ErasureService
from stream_processor.erasure.settings import ErasureSettings
from stream_processor.erasure.withdrawal_tracker import Timing, WithdrawalTracker
from stream_processor.processor.faust_tuning import fail_fast
from stream_processor.processor.kafka_login import faust_login
from stream_processor.quarantine import (
    ConsumerMetrics,
    Failure,
    Quarantine,
    classify,
    guard_each,
)
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import BrokerSettings, Topics
from stream_processor.runtime.workers import worker_app_settings

log = logging.getLogger(__name__)


class FaustOutbound:
    """``Outbound`` over the app's producer (acks=all; tombstones as null values)."""

    def __init__(self, app: faust.App, topics: Topics) -> None:
        self._app = app
        self._topics = topics

    async def command(self, key: bytes, value: bytes) -> None:
        await self._app.producer.send_and_wait(
            self._topics.commands, key, value, partition=None, timestamp=None, headers=None
        )

    async def consent(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        # Sent together, awaited together: one partition keeps them in this order.
        pending = [
            await self._app.producer.send(
                self._topics.consent, key, value, partition=None, timestamp=None, headers=None
            )
            for key, value in records
        ]
        await asyncio.gather(*pending)


class FaustDeadLetters:
    """``quarantine.DeadLetterSink`` over the app's producer (acks=all)."""

    def __init__(self, app: faust.App, topic: str) -> None:
        self._app = app
        self._topic = topic

    async def send(self, key: bytes, value: bytes) -> None:
        await self._app.producer.send_and_wait(
            self._topic, key, value, partition=None, timestamp=None, headers=None
        )


def create_app(
    stack: BrokerSettings,
    settings: ErasureSettings,
    topics: Topics,
    app_id: str,
    deps_factory: Callable[[], Deps],
    metrics: ErasureMetrics,
    consumers: ConsumerMetrics,
) -> tuple[faust.App, ErasureService]:
    datadir = Path(stack.state_dir) / "erasure" / app_id
    app = fail_fast(
        faust.App(
            app_id,
            **worker_app_settings(stack, datadir, commit_interval_s=1.0),
            **faust_login(stack, Role.ERASURE),
        )
    )
    service = ErasureService(
        deps_factory,
        FaustOutbound(app, topics),
        metrics,
        resend_after_s=settings.resend_after_s,
        forget_window_s=settings.forget_window_s,
        withdrawals=WithdrawalTracker(metrics, Timing(
            resend_first_ms=int(settings.withdrawal_resend_first_s * 1000),
            resend_max_ms=int(settings.withdrawal_resend_max_s * 1000),
            alarm_after_ms=int(settings.withdrawal_alarm_after_s * 1000),
            track_ms=int(settings.withdrawal_track_s * 1000),
        )),  # fmt: skip
    )
    erasure_topic = app.topic(topics.erasure, value_serializer="raw", key_serializer="raw")
    acks_topic = app.topic(topics.acks, value_serializer="raw", key_serializer="raw")

    # Requests name a subject in fields the redaction cannot recognise: no bytes kept.
    guarded = {
        "requests": Quarantine("erasure_requests", consumers, keep_bytes=False),
        "acks": Quarantine("erasure_acks", consumers),
    }
    dead_letters = FaustDeadLetters(app, topics.dlq)

    @app.agent(erasure_topic, concurrency=1)  # concurrency=1: faust #606
    async def requests(stream: faust.StreamT[bytes]) -> None:
        await guard_each(stream.events(), lambda _, value, __: service.on_request(value),
                         guarded["requests"], dead_letters)  # fmt: skip

    @app.agent(acks_topic, concurrency=1)
    async def acks(stream: faust.StreamT[bytes]) -> None:
        await guard_each(stream.events(), lambda _, value, __: service.on_ack(value),
                         guarded["acks"], dead_letters)  # fmt: skip

    @app.timer(settings.tick_s)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        await tick_once(service, consumers)

    heartbeat = LedgerHeartbeat(
        lambda topic, key, value: app.producer.send_and_wait(
            topic, key, value, partition=None, timestamp=None, headers=None
        ),
        topics, app_id, consumers,
    )  # fmt: skip

    @app.timer(heartbeat_interval_s(topics))  # type: ignore[untyped-decorator]
    async def ledger_heartbeat() -> None:
        await heartbeat.beat()

    return app, service


async def tick_once(service: ErasureService, consumers: ConsumerMetrics) -> None:
    """One round of ``service.tick``. It must not raise: an exception would end Faust's
    timer for good, and with it every re-send and resumption. A failing store or broker
    is counted as an outage of ``erasure_tick``; the next round tries again."""
    try:
        await service.tick()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the next round retries; logged by type only
        if classify(exc) is Failure.OUTAGE:
            consumers.outage_retries.labels("erasure_tick").inc()
        log.warning("erasure tick failed (%s); the next round tries again", type(exc).__name__)
