"""The worker's retention sweeper on a real SQLite store and the real audit log: expired
rows deleted, metrics, one ``retention_sweep`` entry per site; an unavailable store
is a counted, failed sweep, and the next sweep works."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from stream_processor.audit.entries import EntryType
from stream_processor.audit.wiring import open_audit
from stream_processor.policy.retention import PolicyVersion
from stream_processor.processor.ledgers import Ledgers
from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.processor.sweeping import RetentionSweeper
from stream_processor.quarantine import ConsumerMetrics, Quarantine
from stream_processor.store.sqlite import SqliteEventStore
from tests.processor.service_rig import ListSink
from tests.support.processor import BASE_POLICY, TENANT
from tests.support.store import row

pytestmark = pytest.mark.unit

DAY = 86_400_000
NOW = 1_800_000_000_000


class Unavailable:
    """A store factory that fails the way a stopped server does, until told otherwise."""

    def __init__(self, path: Path) -> None:
        self.down = True
        self.path = path

    def __call__(self) -> SqliteEventStore:
        if self.down:
            raise OSError("connection refused")
        return SqliteEventStore(self.path)


def sweeper_for(tmp_path: Path, factory: object, registry: CollectorRegistry) -> RetentionSweeper:
    metrics = ProcessorMetrics(registry)
    version = PolicyVersion(
        tenant=TENANT, version=3, applied_at_ms=NOW, applied_by="test", document=BASE_POLICY
    )
    policies = {TENANT.encode(): version.encode()}  # the key of the version in force
    ledgers = Ledgers(
        {}, policies, ListSink(), Quarantine("processor", ConsumerMetrics(registry)),
        ListSink(), metrics, partial(SqliteEventStore, tmp_path / "e.db"),  # type: ignore[arg-type]
        consent_topic="c", policies_topic="p", command_key=b"k" * 32,
    )  # fmt: skip
    return RetentionSweeper(
        factory,  # type: ignore[arg-type]
        ledgers,
        metrics,
        audit_factory=lambda: open_audit(tmp_path / "state").log,
        clock=lambda: NOW / 1000,
    )


def test_a_sweep_deletes_expired_rows_and_writes_one_audit_entry_per_site(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    store = SqliteEventStore(path)
    rows = [
        row(1, tenant=TENANT, site="site-1", kind="key_card", expires_at_ms=NOW - DAY),
        row(2, tenant=TENANT, site="site-1", kind="pin", expires_at_ms=NOW - 1),
        row(3, tenant=TENANT, site="site-2", kind="key_card", expires_at_ms=NOW - DAY),
        row(4, tenant=TENANT, site="site-2", kind="key_card", expires_at_ms=NOW + DAY,
            occurred_at_ms=NOW - DAY),
    ]  # fmt: skip
    store.put_many(rows)
    store.close()
    registry = CollectorRegistry()
    sweeper = sweeper_for(tmp_path, partial(SqliteEventStore, path), registry)

    async def run() -> None:
        try:
            report = await sweeper.run()
            assert report is not None and report.deleted_total == 3
        finally:
            await sweeper.close()

    asyncio.run(run())
    audit = open_audit(tmp_path / "state").log
    entries = [e for e in audit.entries() if e.type is EntryType.RETENTION_SWEEP]
    assert [(e.tenant, e.site, e.body["deleted"]) for e in entries] == [
        (TENANT, "site-1", {"key_card": 1, "pin": 1}),
        (TENANT, "site-2", {"key_card": 1}),
    ]
    assert {e.body["policy_version"] for e in entries} == {3}
    labels = {"tenant": TENANT, "site": "site-1", "kind": "pin"}
    assert registry.get_sample_value("facegate_retention_deleted_rows_total", labels) == 1


def test_a_sweep_without_its_store_fails_counted_and_the_next_one_works(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    SqliteEventStore(path).close()
    registry = CollectorRegistry()
    factory = Unavailable(path)
    sweeper = sweeper_for(tmp_path, factory, registry)

    async def run() -> tuple[object, object]:
        try:
            failed = await sweeper.run()
            factory.down = False
            return failed, await sweeper.run()
        finally:
            await sweeper.close()

    failed, worked = asyncio.run(run())
    assert failed is None and worked is not None
    assert registry.get_sample_value("facegate_retention_sweep_failures_total") == 1
