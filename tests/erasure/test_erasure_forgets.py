"""Deletion really deletes: once an erasure is complete and the window for its late audit
entries has passed, no table of the rights database or of the store holds the subject's
pseudonym in any form (text, hex, base64, raw bytes) — while an erasure still pending
keeps it, so a restarted worker resumes it. Every backend pair (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.wire.commands import AckStatus, CommandAck, decode_command, encode
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.progress import FORGOTTEN, ErasureStatus
from stream_processor.erasure.service import Deps, ErasureService
from stream_processor.erasure.withdrawal_tracker import Timing, ingest
from stream_processor.erasure.withdrawals import WithdrawalBook
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy, consent_key
from tests.erasure.doubles import OTHER, SUBJECT, Recorder, request, row
from tests.erasure.traces import traces
from tests.support.store import open_store

pytestmark = pytest.mark.component

GATE = DeviceIdentity("acme", "north", "g1", "d1")
WINDOW_S = 60.0
KEY = b"k" * 32  # the deployment's command-id key
#: The issued receipt names the subject by design (it is the subject's document; the
#: operator keeps a copy to hand out again: ``rights/receipt_store.py``).
RECEIPT_COPY = {("erasure_receipts", "subject"), ("erasure_receipts", "receipt")}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Site:
    """An erasure worker over one store and one rights database, restartable."""

    def __init__(self, tmp: Path, target: dict[str, str], connect: Callable[[], Any]) -> None:
        self.tmp, self.target, self.connect = tmp, target, connect
        self.clock = Clock()
        self.out = Recorder()
        seed = open_store(target)
        now = int(self.clock() * 1000)
        seed.put_many([row(SUBJECT, now - i * 1000) for i in range(5)] + [row(OTHER, now)])
        seed.close()

    def deps(self) -> Deps:
        from stream_processor.audit.wiring import open_audit
        from stream_processor.erasure.audit import ErasureAudit
        from stream_processor.rights.receipt_store import ReceiptStore

        db = self.connect()
        audit = open_audit(self.tmp / "state")
        ea = ErasureAudit(audit.log, audit.key, "unit", audit.openings, ReceiptStore(db), None)
        return Deps(
            store=open_store(self.target), book=ErasureBook(db), audit=ea,
            ledger_keys=lambda: [consent_key("acme", "north", SUBJECT, "access_control")],
            devices=lambda: [GATE], retentions=list, consent_topic="consent",
            forget_openings=audit.openings.forget, withdrawals=WithdrawalBook(db, KEY),
            store_kind=self.target["FACEGATE_STORE"],
        )  # fmt: skip

    def worker(self) -> ErasureService:
        from prometheus_client import CollectorRegistry

        metrics = ErasureMetrics(CollectorRegistry())
        return ErasureService(
            self.deps, self.out, metrics, forget_window_s=WINDOW_S, clock=self.clock
        )

    def ack(self) -> bytes:
        cmd = decode_command(self.out.commands[0])
        return encode(CommandAck(
            schema_version=1, command_id=cmd.command_id, type=cmd.type, tenant=cmd.tenant,
            site=cmd.site, gate=GATE.gate, device=GATE.device, subject=cmd.subject,
            status=AckStatus.DONE, templates_removed=1, outbox_events_purged=0,
            acked_at_ms=int(self.clock() * 1000), request_id=cmd.request_id,
        ))  # fmt: skip


def withdrawn_then_forgotten(db: Any, now_ms: int) -> None:
    """The worker's withdrawal tracker sees the subject's withdrawal, then (the erasure's)
    tombstone of its ledger key."""
    record = ConsentRecord(
        tenant="acme", site="north", subject=SUBJECT, purpose="access_control",
        status=ConsentStatus.WITHDRAWN, given_by=GivenBy.SELF, at_ms=now_ms,
    )  # fmt: skip
    timing = Timing(1000, 60_000, 600_000, 3_600_000)
    book = WithdrawalBook(db, KEY)
    assert ingest(book, [(record.key, record)], [GATE], now_ms, timing) == 1
    ingest(book, [(record.key, None)], [GATE], now_ms, timing)


def store_traces(site: Site, pseudonym: str) -> set[tuple[str, str]]:
    store = open_store(site.target)
    try:
        return traces(lambda sql: store._execute(sql), site.target["FACEGATE_STORE"], pseudonym)
    finally:
        store.close()


def test_after_completion_no_table_of_either_database_holds_the_pseudonym(
    store_target: dict[str, str], rights_connect: Callable[[], Any], tmp_path: Path
) -> None:
    from stream_processor.audit import record
    from stream_processor.audit.wiring import open_audit

    site = Site(tmp_path, store_target, rights_connect)
    db = rights_connect()
    r = request()
    svc = site.worker()

    async def scenario() -> None:
        withdrawn_then_forgotten(db, int(site.clock() * 1000))
        await svc.on_request(r.encode())
        await svc.on_ack(site.ack())
        assert ErasureBook(db).completed_at(r.request_id) is not None
        # The ledger follower logs the tombstone after the receipt, with an opening.
        audit = open_audit(tmp_path / "state")
        record.consent_record_removed(
            audit.log, tenant="acme", site="north", subject=SUBJECT, purpose=None
        )
        audit.close()
        await svc.tick()  # within the window: the book still needs the subject
        kept = ErasureBook(db).get(r.request_id)
        assert kept is not None and kept.request.subject == SUBJECT
        site.clock.now += WINDOW_S + 1
        await svc.tick()
        await svc.close()

    asyncio.run(scenario())
    forgotten = ErasureBook(db).get(r.request_id)
    assert forgotten is not None and forgotten.status is ErasureStatus.COMPLETE
    assert forgotten.request.subject == FORGOTTEN
    assert {a.subject for a in forgotten.acks.values()} == {FORGOTTEN}
    assert traces(db.execute, db.dialect, SUBJECT) == RECEIPT_COPY
    assert store_traces(site, SUBJECT) == set()
    # The other resident is untouched: the scan does find what is there.
    assert ("events", "subject") in store_traces(site, OTHER)


def test_a_pending_erasure_keeps_the_subject_and_resumes_after_a_restart(
    store_target: dict[str, str], rights_connect: Callable[[], Any], tmp_path: Path
) -> None:
    site = Site(tmp_path, store_target, rights_connect)
    db = rights_connect()
    r = request()

    async def first_life() -> None:
        svc = site.worker()
        await svc.on_request(r.encode())  # the gate has not acknowledged: pending
        site.clock.now += WINDOW_S * 10
        await svc.tick()
        await svc.close()

    async def second_life() -> None:
        svc = site.worker()
        await svc.on_ack(site.ack())
        await svc.close()

    asyncio.run(first_life())
    pending = ErasureBook(db).get(r.request_id)
    # Long past the window and still pending: the worker needs the subject to finish.
    assert pending is not None and pending.status is ErasureStatus.PENDING
    assert pending.request.subject == SUBJECT
    assert ErasureBook(db).to_forget(int(site.clock() * 1000), 0) == []
    asyncio.run(second_life())  # a new worker: the book is all it has
    assert ErasureBook(db).completed_at(r.request_id) is not None
    assert store_traces(site, SUBJECT) == set()


def tallies(site: Site) -> list[Any]:
    store = open_store(site.target)
    try:
        return [tuple(r) for r in store._query("SELECT request_id, rows FROM erasure_deletions")]
    finally:
        store.close()


def test_the_stores_tally_goes_once_the_receipt_is_durable_not_before(
    store_target: dict[str, str], rights_connect: Callable[[], Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from stream_processor.erasure.audit import ErasureAudit
    from stream_processor.rights.receipt_store import ReceiptStore

    site = Site(tmp_path, store_target, rights_connect)
    db = rights_connect()
    r = request()
    issue = ErasureAudit.completed

    def rights_db_down(self: ErasureAudit, claims: Any) -> Any:
        raise OSError("the rights database is unreachable")

    async def scenario() -> None:
        svc = site.worker()
        await svc.on_request(r.encode())
        monkeypatch.setattr(ErasureAudit, "completed", rights_db_down)
        with pytest.raises(OSError):
            await svc.on_ack(site.ack())
        # No receipt yet: the tally the receipt's count comes from is still there.
        assert tallies(site) == [(r.request_id, 5)]
        monkeypatch.setattr(ErasureAudit, "completed", issue)
        await svc.tick()  # the complete-but-unrecorded erasure is finished
        await svc.close()

    asyncio.run(scenario())
    receipt = ReceiptStore(db).get(r.request_id)
    assert receipt is not None
    counts = {(d.where, d.what): d.count for d in receipt.claims.deletions}
    assert counts[("event_store", "stored events")] == 5
    assert tallies(site) == []


def test_a_tally_left_by_a_crash_after_the_receipt_goes_with_the_subject(
    store_target: dict[str, str], rights_connect: Callable[[], Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    site = Site(tmp_path, store_target, rights_connect)
    db = rights_connect()
    r = request()

    async def scenario() -> None:
        svc = site.worker()
        await svc.on_request(r.encode())
        # The worker dies after the receipt and the book's completion, before the prune.
        svc_deps = await svc._run(lambda d: d)
        monkeypatch.setattr(svc_deps.store, "forget_erasure", lambda request_id: None)
        await svc.on_ack(site.ack())
        assert ErasureBook(db).completed_at(r.request_id) is not None
        assert tallies(site) == [(r.request_id, 5)]
        monkeypatch.undo()
        site.clock.now += WINDOW_S + 1
        await svc.tick()
        await svc.close()

    asyncio.run(scenario())
    assert tallies(site) == []
