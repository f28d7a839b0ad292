"""The Faust app of a processor worker: thin agents and timers over the services.

- ``ingest_batches``  raw events in batches (aiokafka, ``ingest.run_ingest``) →
                      ``ProcessorService``: decide, dead-letter, store
- ``consent``         the consent ledger → ``Ledgers.apply_consent`` (the table; a
                      withdrawal deletes stored face events and commands the edge)
- ``policies``        policy versions → ``Ledgers.apply_policy``
- timers              consent read positions, the retention sweeper
                      (``RetentionSweeper``), heartbeats on the tables' changelogs

Ledger records are handled under ``quarantine.guard``: a store or broker outage is
waited out (the record stays unacknowledged), a record that cannot be taken is
dead-lettered with its coordinates. Tables are in memory, rebuilt from their
changelogs at every start, so a worker never holds a record the ledger has since
tombstoned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import faust
from prometheus_client import REGISTRY, CollectorRegistry

from stream_processor.audit.log import AuditSink
from stream_processor.audit.settings import AuditSettings
from stream_processor.policy.keys import heartbeat_key
from stream_processor.processor.currency import LedgerGate
from stream_processor.processor.faust_tuning import LeanMonitor, fail_fast
from stream_processor.processor.ingest import run_ingest
from stream_processor.processor.ingest_clients import (
    LedgerEnds,
    OffsetsClient,
    ends_client,
    raw_consumer,
)
from stream_processor.processor.kafka_login import faust_login
from stream_processor.processor.ledgers import Ledgers
from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.processor.service import ProcessorService, RetryPolicy
from stream_processor.processor.settings import ProcessorSettings
from stream_processor.processor.sweeping import RetentionSweeper
from stream_processor.processor.writer import InlineStoreWriter, ProcessStoreWriter, StoreWriter
from stream_processor.quarantine import ConsumerMetrics, Quarantine, guard_each
from stream_processor.runtime.command_key import command_key
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.ledger_client import read_ledger_at
from stream_processor.runtime.settings import BrokerSettings, Topics
from stream_processor.runtime.topics import ledger_configs
from stream_processor.runtime.workers import (
    worker_app_settings,
    worker_replication,
)
from stream_processor.store.base import EventStore

StoreFactory = Callable[[], EventStore]


class TopicSender:
    """``Sender``/``DeadLetterSink`` over a Faust topic (returns once the broker has it)."""

    def __init__(self, topic: Any) -> None:
        self._topic = topic

    async def send(self, key: bytes, value: bytes) -> None:
        await (await self._topic.send(key=key, value=value))


def open_audit_log(state_dir: Path) -> AuditSink:
    """The operator's audit log under the state directory (the sweeper's entries)."""
    from stream_processor.audit.wiring import open_audit
    from stream_processor.runtime.kafka_auth import Role

    return open_audit(state_dir, role=Role.PROCESSOR).log


def new_app(stack: BrokerSettings, settings: ProcessorSettings) -> faust.App:
    datadir = Path(stack.state_dir) / "processor" / settings.worker_name
    return fail_fast(
        faust.App(
            settings.app_id,
            **worker_app_settings(
                stack, datadir, settings.commit_interval_s, settings.producer_timeout_s
            ),
            **faust_login(stack, Role.PROCESSOR),
            stream_wait_empty=True,
            stream_buffer_maxsize=settings.stream_buffer_maxsize,
            Monitor=LeanMonitor,
        )
    )


def new_writer(settings: ProcessorSettings, store_factory: StoreFactory) -> StoreWriter:
    if settings.store_writer == "process":
        return ProcessStoreWriter(store_factory)
    return InlineStoreWriter(store_factory)


def create_app(
    stack: BrokerSettings,
    settings: ProcessorSettings,
    topics: Topics,
    store_factory: StoreFactory,
    clock: Callable[[], float] = time.time,
    registry: CollectorRegistry = REGISTRY,
    audit_factory: Callable[[], AuditSink] | None = None,
) -> faust.App:
    """``audit_factory`` (default: the audit log under ``stack.state_dir``) receives
    the sweeper's ``retention_sweep`` entries."""
    app = new_app(stack, settings)
    metrics = ProcessorMetrics(registry)
    quarantine = Quarantine("processor", ConsumerMetrics(registry), clock=clock)

    def topic(name: str) -> Any:
        return app.topic(name, value_serializer="raw", key_serializer="raw")

    dlq = TopicSender(topic(topics.dlq))
    consent_topic, policy_topic = topic(topics.consent), topic(topics.policies)
    # Every worker holds the whole ledger (events of any site need any consent).
    # partitions=1/recovery_buffer_size=1: faust's documented fix for GlobalTable
    # recovery loops with several instances.
    table_options: dict[str, Any] = dict(
        partitions=1,
        recovery_buffer_size=1,
        key_type=bytes,  # bytes → the "raw" codec
        value_type=bytes,
        # Their changelogs' min.insync.replicas follows their replicas (the app's).
        extra_topic_configs=ledger_configs(topics, worker_replication(stack)[0]),
        use_partitioner=True,
    )
    ledgers = Ledgers(
        app.GlobalTable("consent", **table_options),
        app.GlobalTable("policies", **table_options),
        dlq,
        quarantine,
        TopicSender(topic(topics.commands)),
        metrics,
        store_factory,
        consent_topic=topics.consent,
        policies_topic=topics.policies,
        # Made here only on a single host: hosts of several share the first one's.
        command_key=command_key(stack.state_dir, create=AuditSettings().mode != "topic"),
        withdrawal_recheck_s=settings.withdrawal_recheck_s,
    )
    add_ingest(app, stack, settings, topics, store_factory, ledgers, metrics, quarantine, clock)
    add_ledger_agents(app, consent_topic, policy_topic, ledgers, quarantine, dlq)
    sweeper = RetentionSweeper(
        store_factory,
        ledgers,
        metrics,
        batch_size=settings.sweep_batch_size,
        audit_factory=audit_factory or partial(open_audit_log, Path(stack.state_dir)),
        clock=clock,
    )
    add_timers(app, settings, topics, ledgers, sweeper, clock)
    return app


def add_ingest(
    app: faust.App,
    stack: BrokerSettings,
    settings: ProcessorSettings,
    topics: Topics,
    store_factory: StoreFactory,
    ledgers: Ledgers,
    metrics: ProcessorMetrics,
    quarantine: Quarantine,
    clock: Callable[[], float],
) -> None:
    @app.task  # type: ignore[untyped-decorator]
    async def ingest_batches() -> None:
        consumer = raw_consumer(stack, settings, topics.raw)
        writer = new_writer(settings, store_factory)
        service = ProcessorService(
            writer,
            TopicSender(app.topic(topics.dlq, value_serializer="raw", key_serializer="raw")),
            quarantine,
            metrics,
            policy_of=ledgers.policy_of,
            consent_of=ledgers.consent_of,
            retry=RetryPolicy(settings.store_retry_first_s, settings.store_retry_max_s),
            clock=clock,
        )

        partitions: dict[str, list[int]] = {}

        async def open_views() -> None:
            loop = asyncio.get_running_loop()

            async def read(name: str) -> tuple[dict[bytes, bytes], dict[int, int]]:
                auth = kafka_python_auth(stack, Role.PROCESSOR)
                snapshot, ends = await loop.run_in_executor(
                    None, read_ledger_at, stack.kafka_bootstrap, name, 120.0, auth
                )
                partitions[name] = sorted(ends)
                return snapshot, ends

            await ledgers.open_views(read)

        ends = ends_client(
            stack.kafka_bootstrap,
            f"{settings.app_id}-{settings.worker_name}-ledger-ends",
            kafka_python_auth(stack, Role.PROCESSOR),
        )
        gate = new_gate(ends, partitions, topics, ledgers, metrics)

        await writer.open()
        ledgers.writers.append(writer)
        await consumer.start()
        try:
            await ends.start()
            await run_ingest(
                consumer,
                service,
                batch_size=settings.batch_size,
                batch_within_s=settings.batch_within_s,
                before_first=open_views,
                lag=metrics.consumer_lag,
                gate=gate,
            )
        finally:
            ledgers.writers.clear()
            await writer.close()
            await ends.stop()
            await consumer.stop()


def new_gate(
    ends: OffsetsClient,
    partitions: dict[str, list[int]],
    topics: Topics,
    ledgers: Ledgers,
    metrics: ProcessorMetrics,
) -> LedgerGate:
    """The ledger gate of the ingest loop; ``partitions`` (per ledger topic) is filled
    when the views open, before the first batch. ``ends`` must not be the raw
    consumer (``ingest_clients``: its fetch long-polls would delay every look)."""
    return LedgerGate(
        LedgerEnds(ends, partitions),
        ledgers.position,
        {"consent": topics.consent, "policies": topics.policies},
        metrics,
    )


def add_ledger_agents(
    app: faust.App,
    consent_topic: Any,
    policy_topic: Any,
    ledgers: Ledgers,
    quarantine: Quarantine,
    dlq: TopicSender,
) -> None:
    @app.agent(consent_topic, concurrency=1)  # concurrency=1: faust #606
    async def consent(stream: faust.StreamT[bytes]) -> None:
        try:
            # No byte of a consent record in a dead letter: it holds a pseudonym.
            await guard_each(
                stream.events(), ledgers.apply_consent, quarantine, dlq, keep_raw=False
            )
        finally:
            ledgers.close()

    @app.agent(policy_topic, concurrency=1)
    async def policies(stream: faust.StreamT[bytes]) -> None:
        await guard_each(stream.events(), ledgers.apply_policy, quarantine, dlq)


def add_timers(
    app: faust.App,
    settings: ProcessorSettings,
    topics: Topics,
    ledgers: Ledgers,
    sweeper: RetentionSweeper,
    clock: Callable[[], float],
) -> None:
    def recovered() -> bool:
        return bool(app.tables.recovery.completed.is_set())  # type: ignore[attr-defined]

    @app.timer(0.2)  # type: ignore[untyped-decorator]
    async def consent_positions() -> None:
        ledgers.flush_consent_positions()

    @app.timer(settings.sweep_interval_s)  # type: ignore[untyped-decorator]
    async def retention_sweeper() -> None:
        if recovered():  # never sweep on a half-read policy table
            await sweeper.run()

    @app.timer(max(1.0, topics.ledger_segment_ms / 2000))  # type: ignore[untyped-decorator]
    async def ledger_heartbeat() -> None:
        # Compaction never touches the active segment, and a segment only rolls on
        # a write: these writes keep the stated "gone within" bound true on the
        # tables' changelogs (this app's own topics). The ledgers themselves are
        # beaten by the erasure worker: this role may not write them.
        key = heartbeat_key(settings.worker_name)
        beat = str(int(clock() * 1000)).encode()
        if recovered():
            ledgers.consent_table[key] = beat
            ledgers.policy_table[key] = beat
