"""The erasure's store side on PostgreSQL (a private cluster started by the project's
own stack code): the subject's rows and their share of the aggregates go, the others'
stay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from stream_processor.erasure import plan
from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.service import Deps, ErasureService
from stream_processor.processor.enforce import STORED
from tests.erasure.doubles import OTHER, SUBJECT, Recorder, request, row
from tests.support.store import new_pg_database

pytestmark = pytest.mark.component


def test_erasure_on_a_postgres_store(pg_cluster: Any, tmp_path: Path) -> None:  # noqa: F811
    from prometheus_client import CollectorRegistry

    from stream_processor.audit.wiring import open_audit
    from stream_processor.erasure.audit import ErasureAudit
    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.store.base import AggregateKey
    from stream_processor.store.postgres import PostgresEventStore

    dsn = new_pg_database(pg_cluster)
    now = int(time.time() * 1000)
    minute = now - now % 60_000
    rows = [row(SUBJECT, minute + i) for i in range(4)] + [row(OTHER, minute + 5)]
    cell = AggregateKey(minute, "acme", "north", "g1", "face_match", "granted", STORED)
    seed = PostgresEventStore(dsn)
    seed.write_batch(rows, {cell: 5})
    seed.close()

    def deps() -> Deps:
        db = open_rights_db(tmp_path / "rights.sqlite")
        audit = open_audit(tmp_path / "state")
        ea = ErasureAudit(audit.log, audit.key, "pg", audit.openings, ReceiptStore(db), None)
        return Deps(
            store=PostgresEventStore(dsn), book=ErasureBook(db), audit=ea,
            ledger_keys=lambda: [], devices=lambda: [], retentions=lambda: [],
            consent_topic="consent",
        )  # fmt: skip

    svc = ErasureService(deps, Recorder(), ErasureMetrics(CollectorRegistry()))
    r = request()

    async def run() -> None:
        await svc.on_request(r.encode())
        await svc.close()

    asyncio.run(run())
    receipt = ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")).get(r.request_id)
    assert receipt is not None
    counts = {d.where: d.count for d in receipt.claims.deletions}
    assert counts["event_store"] == 4 and counts["aggregates"] == 4
    store = PostgresEventStore(dsn)
    try:
        assert store.events_of_subject("acme", "north", SUBJECT) == []
        assert len(store.events_of_subject("acme", "north", OTHER)) == 1
        assert store.aggregates("acme", 0)[cell] == 1  # only the other resident's count
    finally:
        store.close()
    assert plan.kafka_copies([], 0) == []
