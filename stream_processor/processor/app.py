"""The Faust app of a processor worker; built by ``create_app`` in the composition root.

Agents (all ``concurrency=1``; at-least-once with idempotent writes):

- ``ingest``   raw events, in batches → ``enforce_batch`` → store rows + per-minute
               counts in one transaction; malformed input → dead-letter topic.
- ``consent``  the consent ledger → the ``consent`` GlobalTable; a withdrawal deletes
               the subject's stored face events for that purpose and sends an
               ``EdgeCommand`` to the site's devices (via the commands topic).
- ``policies`` policy versions → the ``policies`` GlobalTable (invalid ones are
               dead-lettered and never take effect).

Timers: the retention sweeper, and heartbeats that keep the compacted topics rolling.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faust
from prometheus_client import REGISTRY, CollectorRegistry

from edge_agent.wire.commands import encode as encode_command
from stream_processor.dead_letter import DeadLetter
from stream_processor.policy.consent import ALL_PURPOSES, ConsentRecord, ConsentStatus
from stream_processor.policy.decision import CONSENT_KINDS
from stream_processor.policy.retention import CompiledPolicy, compile_version, policy_key
from stream_processor.processor.enforce import EnforcedBatch, enforce_batch
from stream_processor.processor.faust_tuning import LeanMonitor
from stream_processor.processor.ledger import (
    HEARTBEAT_PREFIX,
    LedgerRefusal,
    LedgerView,
    consent_state,
    read_consent,
    read_policy,
    site_key,
    withdrawal_command,
)
from stream_processor.processor.ledger_client import read_ledger_at
from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.processor.settings import ProcessorSettings
from stream_processor.processor.sweeper import SweepReport, sweep
from stream_processor.processor.writer import (
    InlineStoreWriter,
    ProcessStoreWriter,
    StoreWriter,
)
from stream_processor.settings import StackSettings, Topics
from stream_processor.stack.topics import ledger_configs
from stream_processor.store.base import EventStore

log = logging.getLogger(__name__)

_CONSENT_KINDS = [k.value for k in CONSENT_KINDS]
#: Table keys holding how far this app has read each ledger partition.
POSITION_PREFIX = b"_position/"


def position_key(event: Any) -> bytes:
    return POSITION_PREFIX + str(event.message.partition).encode()


def create_app(
    stack: StackSettings,
    settings: ProcessorSettings,
    topics: Topics,
    store_factory: Callable[[], EventStore],
    clock: Callable[[], float] = time.time,
    registry: CollectorRegistry = REGISTRY,
) -> faust.App:
    datadir = Path(stack.state_dir) / "processor" / settings.worker_name
    datadir.mkdir(parents=True, exist_ok=True)
    metrics = ProcessorMetrics(registry)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{stack.kafka_bootstrap}",
        # In-memory tables are rebuilt from their changelogs at every start, so a
        # worker can never hold a record the ledger has since tombstoned.
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
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        Monitor=LeanMonitor,
    )
    raw_topic = app.topic(topics.raw, value_serializer="raw", key_serializer="raw")
    dlq_topic = app.topic(topics.dlq, value_serializer="raw", key_serializer="raw")
    consent_topic = app.topic(topics.consent, value_serializer="raw", key_serializer="raw")
    policy_topic = app.topic(topics.policies, value_serializer="raw", key_serializer="raw")
    commands_topic = app.topic(topics.commands, value_serializer="raw", key_serializer="raw")

    # Every worker holds the whole ledger (events of any site need any consent).
    # partitions=1/recovery_buffer_size=1: faust's documented fix for GlobalTable
    # recovery loops with several instances.
    table_options: dict[str, Any] = dict(
        partitions=1,
        recovery_buffer_size=1,
        key_type=bytes,  # bytes → the "raw" codec
        value_type=bytes,
        extra_topic_configs=ledger_configs(topics),
        use_partitioner=True,
    )
    consent_table = app.GlobalTable("consent", **table_options)
    policy_table = app.GlobalTable("policies", **table_options)

    views: dict[str, LedgerView] = {}

    async def open_views() -> None:
        """Snapshots of both ledgers for this worker's first events (see LedgerView)."""
        loop = asyncio.get_running_loop()
        for name, topic, table in (
            ("consent", topics.consent, consent_table),
            ("policies", topics.policies, policy_table),
        ):
            snapshot, ends = await loop.run_in_executor(
                None, read_ledger_at, stack.kafka_bootstrap, topic
            )
            views[name] = LedgerView(table.get, snapshot, ends, POSITION_PREFIX)

    def policy_of(tenant: str) -> CompiledPolicy | None:
        data = views["policies"].get(policy_key(tenant))
        return compile_version(data) if data else None

    def consent_of(tenant: str, site: str, subject: str, purpose: str) -> Any:
        return consent_state(views["consent"].get, tenant, site, subject, purpose)

    def dead_letter(raw: bytes, reason: str, detail: str, source: str) -> bytes:
        metrics.dead_letters.labels(reason).inc()
        now_ms = int(clock() * 1000)
        return DeadLetter.build(raw, reason, detail, source, now_ms, "processor").encode()

    async def decide(values: Sequence[bytes]) -> EnforcedBatch:
        """Decide one batch; its dead letters are in Kafka when this returns."""
        batch = enforce_batch(values, int(clock() * 1000), policy_of, consent_of)
        pending = [
            await dlq_topic.send(value=dead_letter(raw, reason, detail, topics.raw))
            for raw, reason, detail in batch.rejected
        ]
        if pending:
            await asyncio.gather(*pending)
        return batch

    def stored(batch: EnforcedBatch, inserted: int, started: float) -> None:
        for (kind, outcome), n in batch.outcomes.items():
            metrics.decisions.labels(kind, outcome).inc(n)
        if inserted < len(batch.rows):
            metrics.stored_duplicates.inc(len(batch.rows) - inserted)
        metrics.batch_seconds.observe(time.perf_counter() - started)

    #: Set while raw events are read in batches: where they are written (writer.py).
    writer: list[StoreWriter] = []

    if settings.ingest == "faust":

        @app.agent(raw_topic, concurrency=1)  # concurrency=1: faust #606
        async def ingest(stream: faust.StreamT[bytes]) -> None:
            store = store_factory()
            try:
                await open_views()
                async for values in stream.take(
                    settings.batch_size, within=settings.batch_within_s
                ):
                    started = time.perf_counter()
                    batch = await decide(values)
                    stored(batch, store.write_batch(batch.rows, batch.counts), started)
            finally:
                store.close()

    else:

        @app.task  # type: ignore[untyped-decorator]
        async def ingest_batches() -> None:
            # Faust streams cost tens of microseconds per event before our code
            # runs (measured: docs/benchmarks.md, Processor); raw events are
            # read in batches straight from aiokafka instead. At least once: a
            # batch's offsets are committed only after its store transaction,
            # and batches are written in the order they were read. While batch N
            # is written (by default in the worker's store process), batch N+1 is
            # fetched and decided.
            from aiokafka import AIOKafkaConsumer, TopicPartition
            from aiokafka.errors import CommitFailedError, IllegalStateError

            consumer = AIOKafkaConsumer(
                topics.raw,
                bootstrap_servers=stack.kafka_bootstrap,
                group_id=f"{settings.app_id}.raw",
                client_id=f"{settings.app_id}-{settings.worker_name}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=settings.batch_size,
                max_partition_fetch_bytes=4 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
            )
            store_writer: StoreWriter = (
                ProcessStoreWriter(store_factory)
                if settings.store_writer == "process"
                else InlineStoreWriter(store_factory)
            )
            await store_writer.open()
            writer.append(store_writer)
            Flight = tuple[asyncio.Future[int], EnforcedBatch, dict[TopicPartition, int], float]
            in_flight: Flight | None = None

            async def settle(flight: Flight) -> None:
                written, batch, offsets, started = flight
                stored(batch, await written, started)
                # A rebalance may have moved a partition away while its batch was
                # written: its new owner reads those records again (at least once;
                # the store drops the duplicates), so commit only what is still ours.
                assigned = consumer.assignment()
                mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
                if not mine:
                    return
                try:
                    await consumer.commit(mine)
                except (CommitFailedError, IllegalStateError) as exc:
                    log.warning("offsets not committed, the group rebalanced: %s", exc)

            await consumer.start()
            try:
                await open_views()
                timeout_ms = int(settings.batch_within_s * 1000)
                while True:
                    fetched = await consumer.getmany(
                        timeout_ms=timeout_ms, max_records=settings.batch_size
                    )
                    if not fetched:
                        if in_flight is not None:
                            flight, in_flight = in_flight, None
                            await settle(flight)
                        continue
                    started = time.perf_counter()
                    values = [r.value or b"" for records in fetched.values() for r in records]
                    offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items()}
                    ticket = store_writer.begin()
                    try:
                        batch = await decide(values)
                    except BaseException as exc:
                        store_writer.fail(exc)
                        raise
                    if in_flight is not None:
                        flight, in_flight = in_flight, None
                        await settle(flight)
                    written = store_writer.submit(ticket, batch.rows, batch.counts)
                    in_flight = (written, batch, offsets, started)
            finally:
                try:
                    if in_flight is not None:  # let the last write finish and commit it
                        await settle(in_flight)
                finally:
                    writer.clear()
                    await store_writer.close()
                    await consumer.stop()

    recent_withdrawals: deque[tuple[float, ConsentRecord]] = deque()

    def delete_withdrawn(store: EventStore, record: ConsentRecord) -> int:
        purpose = None if record.purpose == ALL_PURPOSES else record.purpose
        return store.delete_subject(
            record.tenant, record.site, record.subject, purpose, kinds=_CONSENT_KINDS
        )

    #: Read positions of the consent ledger not yet written to the table.
    consent_read: dict[bytes, bytes] = {}

    @app.agent(consent_topic, concurrency=1)
    async def consent(stream: faust.StreamT[bytes]) -> None:
        store = store_factory()
        try:
            async for event in stream.events():
                key, value = event.key, event.value
                await apply_consent(store, key, value)
                consent_read[position_key(event)] = str(event.message.offset).encode()
        finally:
            store.close()

    @app.timer(0.2)  # type: ignore[untyped-decorator]
    async def consent_positions() -> None:
        # A position is a table write (a changelog record): written per record it
        # doubled the cost of a worker's first start, which replays the ledger.
        while consent_read:
            key, offset = consent_read.popitem()
            consent_table[key] = offset

    async def apply_consent(store: EventStore, key: bytes | None, value: bytes | None) -> None:
        outcome = read_consent(key, value)
        if isinstance(outcome, LedgerRefusal):
            # The dead letter keeps no byte of the record: it holds a pseudonym.
            fut = await dlq_topic.send(
                value=dead_letter(b"", outcome.reason, outcome.detail, topics.consent)
            )
            await fut
            return
        if outcome is None:
            if key is not None and value is None:
                consent_table.pop(key, None)  # the ledger forgot it: so do we
            return
        assert key is not None
        consent_table[key] = value
        metrics.consent_changes.labels(outcome.status.value).inc()
        if outcome.status is not ConsentStatus.WITHDRAWN:
            return
        for w in writer:  # batches decided before the withdrawal are stored first
            await w.drain()
        deleted = delete_withdrawn(store, outcome)
        command = withdrawal_command(outcome)
        fut = await commands_topic.send(
            key=site_key(outcome.tenant, outcome.site), value=encode_command(command)
        )
        await fut
        recent_withdrawals.append((time.monotonic(), outcome))
        metrics.withdrawal_deleted.inc(deleted)
        metrics.edge_commands.labels(command.type.value).inc()
        log.info(
            "consent withdrawn at %s/%s for %s: %d stored events deleted, "
            "command %s sent to the site's devices",
            outcome.tenant, outcome.site, outcome.purpose, deleted, command.command_id,
        )  # fmt: skip

    @app.agent(policy_topic, concurrency=1)
    async def policies(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await apply_policy(event.key, event.value)
            policy_table[position_key(event)] = str(event.message.offset).encode()

    async def apply_policy(key: bytes | None, value: bytes | None) -> None:
        outcome = read_policy(key, value)
        if isinstance(outcome, LedgerRefusal):
            fut = await dlq_topic.send(
                value=dead_letter(value or b"", outcome.reason, outcome.detail, topics.policies)
            )
            await fut
            log.warning("policy record refused: %s %s", outcome.reason, outcome.detail)
            return
        if outcome is None:
            if key is not None and value is None:
                policy_table.pop(key, None)
            return
        assert key is not None
        policy_table[key] = outcome
        if b"@" not in key:
            compiled = compile_version(outcome)
            metrics.policy_version.labels(compiled.tenant).set(compiled.version)
            log.info("policy v%d of %s in force", compiled.version, compiled.tenant)

    def recovered() -> bool:
        return bool(app.tables.recovery.completed.is_set())  # type: ignore[attr-defined]

    sweep_store: list[EventStore] = []
    sweep_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweeper")

    def run_sweep(snapshot: dict[str, CompiledPolicy], now_ms: int) -> SweepReport:
        if not sweep_store:
            sweep_store.append(store_factory())
        store = sweep_store[0]
        horizon = time.monotonic() - settings.withdrawal_recheck_s
        while recent_withdrawals and recent_withdrawals[0][0] < horizon:
            recent_withdrawals.popleft()
        for _, record in list(recent_withdrawals):
            delete_withdrawn(store, record)
        return sweep(store, snapshot.get, now_ms, settings.sweep_batch_size)

    @app.timer(settings.sweep_interval_s)  # type: ignore[untyped-decorator]
    async def retention_sweeper() -> None:
        if not recovered():
            return  # never sweep on a half-read policy table
        snapshot: dict[str, CompiledPolicy] = {}
        for key, data in list(policy_table.items()):
            # Internal keys (heartbeats, read positions) start with "_", ids never do.
            if b"@" not in key and not key.startswith(b"_") and data:
                compiled = compile_version(data)
                snapshot[compiled.tenant] = compiled
        now_ms = int(clock() * 1000)
        loop = asyncio.get_running_loop()
        # One dedicated thread: the sweeper's store connection lives in it
        # (SQLite connections must stay in the thread that opened them).
        report = await loop.run_in_executor(sweep_thread, run_sweep, snapshot, now_ms)
        publish_sweep(report)

    def publish_sweep(report: SweepReport) -> None:
        for (tenant, site, kind), n in report.deleted.items():
            metrics.swept.labels(tenant, site, kind).inc(n)
        oldest: dict[tuple[str, str], int] = {}
        for g in report.groups:
            oldest[(g.tenant, g.site)] = max(oldest.get((g.tenant, g.site), 0), g.oldest_age_ms)
            rule = "no policy" if g.rule_ms is None else f"{g.rule_ms / 1000:.0f}s"
            log.info(
                "retention %s/%s %s/%s: %d rows, oldest %.0fs old, rule %s%s",
                g.tenant, g.site, g.kind, g.purpose, g.rows, g.oldest_age_ms / 1000, rule,
                "" if g.within_rule else " OVERDUE",
            )  # fmt: skip
        for (tenant, site), age_ms in oldest.items():
            metrics.oldest_age.labels(tenant, site).set(age_ms / 1000)
            metrics.overdue_rows.labels(tenant, site).set(
                sum(n for (t, s, _), n in report.overdue.items() if (t, s) == (tenant, site))
            )
        if report.deleted_total:
            log.info("retention sweep deleted %d rows", report.deleted_total)

    heartbeat_s = max(1.0, topics.ledger_segment_ms / 2000)

    @app.timer(heartbeat_s)  # type: ignore[untyped-decorator]
    async def ledger_heartbeat() -> None:
        # Compaction never touches the active segment, and a segment only rolls on
        # a write: these writes keep the stated "gone within" bound true on quiet
        # ledgers and on the tables' changelogs.
        key = HEARTBEAT_PREFIX + settings.worker_name.encode()
        beat = str(int(clock() * 1000)).encode()
        for topic in (consent_topic, policy_topic):
            await topic.send(key=key, value=beat)
        if recovered():
            consent_table[key] = beat
            policy_table[key] = beat

    return app
