"""The erasure worker without brokers: the pure plan, and the service over doubles of its
ports (a real SQLite store and book, a real audit log and key)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from edge_agent.pseudonym import pseudonym
from edge_agent.wire.commands import AckStatus, CommandAck, CommandType, decode_command, encode
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure import plan
from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.service import Deps, ErasureService
from stream_processor.errors import BrokerError
from stream_processor.policy.consent import consent_key, decode_consent
from stream_processor.rights.receipts import check_signature
from tests.erasure.doubles import OTHER, SECRET, SUBJECT, Recorder, request, row

pytestmark = pytest.mark.unit


# -- the pure plan ------------------------------------------------------------------------


def test_aggregate_contributions_take_back_one_per_stored_event_per_minute_cell() -> None:
    t = 1_790_000_000_000 - 1_790_000_000_000 % 60_000
    back = plan.aggregate_contributions(
        [row(SUBJECT, t), row(SUBJECT, t + 5), row(SUBJECT, t + 61_000, kind="key_card")]
    )
    assert sorted(back.values()) == [-2, -1]
    assert {k.outcome for k in back} == {"stored"} and {k.minute_ms for k in back} == {
        t,
        t + 60_000,
    }


def test_withdrawal_and_keys_to_forget_follow_the_scope() -> None:
    full = request()
    (w,) = plan.withdrawals(full, 5)
    assert (w.purpose, w.status.value, w.subject) == ("*", "withdrawn", SUBJECT)
    keys = [
        consent_key("acme", "north", SUBJECT, "access_control"),
        consent_key("acme", "north", SUBJECT, "parcel_delivery"),
        consent_key("acme", "north", OTHER, "access_control"),
        consent_key("acme", "south", SUBJECT, "access_control"),
    ]
    assert plan.consent_keys_to_forget(keys, full) == keys[:2]
    scoped = request(["parcel_delivery"])
    assert [r.purpose for r in plan.withdrawals(scoped, 5)] == ["parcel_delivery"]
    assert plan.consent_keys_to_forget(keys, scoped) == [keys[1]]


def test_command_id_is_stable_per_request_and_the_command_names_it() -> None:
    r = request()
    assert plan.command_id_of(r) == plan.command_id_of(r)
    assert plan.command_id_of(r) != plan.command_id_of(request())
    cmd = decode_command(encode(plan.erase_command(r, plan.command_id_of(r), r.requested_at_ms)))
    assert (cmd.type, cmd.request_id, cmd.subject) == (CommandType.ERASE_SUBJECT, r.request_id,
                                                       SUBJECT)  # fmt: skip


def test_kafka_copies_state_retention_and_compaction_bounds() -> None:
    raw = plan.TopicRetention.from_configs(
        "raw", {"cleanup.policy": "delete", "retention.ms": "86400000", "segment.ms": "3600000"}
    )
    ledger = plan.TopicRetention.from_configs(
        "consent",
        {"cleanup.policy": "compact", "segment.ms": "60000", "max.compaction.lag.ms": "60000",
         "delete.retention.ms": "60000"},
    )  # fmt: skip
    forever = plan.TopicRetention.from_configs("audit", {"retention.ms": "-1"})
    copies = {c.topic: c.gone_by_ms for c in plan.kafka_copies([raw, ledger, forever], 0, 300_000)}
    assert copies["raw"] == 86_400_000 + 3_600_000 + 300_000
    assert copies["consent"] == 60_000 * 2 + 30_000 + 60_000 + 2 * plan.CLEANER_BACKOFF_MS
    assert copies["audit"] == -1


def test_site_devices_keeps_one_site() -> None:
    devs = [
        DeviceIdentity("acme", "north", "g1", "d1"),
        DeviceIdentity("acme", "south", "g1", "d1"),
        DeviceIdentity("acme", "north", "g2", "d9"),
    ]
    assert plan.site_devices(devs, "acme", "north") == [("g1", "d1"), ("g2", "d9")]


# -- the service over doubles -------------------------------------------------------------


def make_service(tmp: Path, devices: list[DeviceIdentity], outbound: Recorder) -> ErasureService:
    from prometheus_client import CollectorRegistry

    from stream_processor.audit.wiring import open_audit
    from stream_processor.erasure.audit import ErasureAudit
    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.store.sqlite import SqliteEventStore

    store_path = tmp / "events.sqlite"
    seed = SqliteEventStore(store_path)
    now = int(time.time() * 1000)
    seed.put_many([row(SUBJECT, now - i * 1000) for i in range(5)] + [row(OTHER, now)])
    seed.close()

    def deps() -> Deps:
        db = open_rights_db(tmp / "rights.sqlite")
        audit = open_audit(tmp / "state")
        ea = ErasureAudit(audit.log, audit.key, "unit", audit.openings, ReceiptStore(db), None)
        return Deps(
            store=SqliteEventStore(store_path), book=ErasureBook(db), audit=ea,
            ledger_keys=lambda: [consent_key("acme", "north", SUBJECT, "access_control")],
            devices=lambda: devices,
            retentions=lambda: [plan.TopicRetention.from_configs("raw", {"retention.ms": "1000"})],
            consent_topic="consent", forget_openings=audit.openings.forget,
        )  # fmt: skip

    return ErasureService(deps, outbound, ErasureMetrics(CollectorRegistry()), resend_after_s=0.01)


def ack_for(cmd_value: bytes, gate: str, device: str, status: AckStatus = AckStatus.DONE) -> bytes:
    cmd = decode_command(cmd_value)
    return encode(CommandAck(
        schema_version=1, command_id=cmd.command_id, type=cmd.type, tenant=cmd.tenant,
        site=cmd.site, gate=gate, device=device, subject=cmd.subject, status=status,
        templates_removed=1, outbox_events_purged=2, acked_at_ms=int(time.time() * 1000),
        request_id=cmd.request_id, detail="boom" if status is AckStatus.FAILED else None,
    ))  # fmt: skip


def test_service_pending_until_every_device_acked_then_one_signed_receipt(tmp_path: Path) -> None:
    from stream_processor.audit.wiring import open_audit
    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.store.sqlite import SqliteEventStore

    devices = [
        DeviceIdentity("acme", "north", "g1", "d1"),
        DeviceIdentity("acme", "north", "g2", "d2"),
    ]
    out = Recorder()
    svc = make_service(tmp_path, devices, out)
    r = request()

    async def scenario() -> None:
        await svc.on_request(r.encode())
        await svc.on_request(r.encode())  # redelivered: same command again, no second entry
        assert len({decode_command(c).command_id for c in out.commands}) == 1
        book = ErasureBook(open_rights_db(tmp_path / "rights.sqlite"))
        (pending,) = book.pending_for_subject("acme", "north", SUBJECT)
        assert pending["devices_pending"] == ["g1/d1", "g2/d2"] and pending["stores_done"]
        assert (
            SUBJECT not in str(pending) and book.pending_for_subject("acme", "north", OTHER) == []
        )
        await svc.on_ack(ack_for(out.commands[0], "g1", "d1", AckStatus.FAILED))
        await svc.on_ack(ack_for(out.commands[0], "g1", "d1"))
        await svc.on_ack(ack_for(out.commands[0], "g1", "d1"))  # duplicate
        await asyncio.sleep(0.05)  # past resend_after_s
        await svc.tick()  # g2 still owes: the command goes out again
        assert len(out.commands) >= 3
        await svc.on_ack(ack_for(out.commands[0], "g2", "d2"))
        await svc.on_ack(ack_for(out.commands[0], "g2", "d2"))
        await svc.close()

    asyncio.run(scenario())
    receipts = ReceiptStore(open_rights_db(tmp_path / "rights.sqlite"))
    receipt = receipts.get(r.request_id)
    assert receipt is not None
    counts = {(d.where, d.what): d.count for d in receipt.claims.deletions}
    assert counts[("event_store", "stored events")] == 5
    assert counts[("kafka:consent", "consent records (tombstoned)")] == 2  # the grant and the "*"
    assert [(d.gate, d.device) for d in receipt.claims.devices] == [("g1", "d1"), ("g2", "d2")]
    assert check_signature(receipt, open_audit(tmp_path / "state").key.public) == []
    store = SqliteEventStore(tmp_path / "events.sqlite")
    assert store.events_of_subject("acme", "north", SUBJECT) == []
    assert len(store.events_of_subject("acme", "north", OTHER)) == 1
    # Withdrawal first, then tombstones; only the subject's keys.
    withdrawal = decode_consent(next(v for _, v in out.ledger if v is not None))
    assert (withdrawal.purpose, withdrawal.status.value) == ("*", "withdrawn")
    assert all(v is None for _, v in out.ledger[1:]) and all(SUBJECT.encode() in k
                                                               for k, _ in out.ledger)  # fmt: skip
    log = (tmp_path / "state" / "audit" / "log.jsonl").read_text()
    assert log.count("erasure_requested") == 1 and log.count("erasure_completed") == 1
    assert SUBJECT not in log


def test_service_without_devices_completes_at_once_and_ignores_foreign_acks(tmp_path: Path) -> None:
    out = Recorder()
    svc = make_service(tmp_path, [DeviceIdentity("acme", "south", "g1", "d1")], out)
    r = request()
    foreign = msgspec.json.encode({"schema_version": 1, "nonsense": True})

    async def scenario() -> None:
        refused = await svc.on_ack(foreign)
        assert refused is not None and refused.reason == "unknown_field"
        refused = await svc.on_request(b"{not json")
        assert refused is not None and refused.reason == "bad_json"
        assert await svc.on_request(r.encode()) is None
        await svc.close()

    asyncio.run(scenario())
    assert out.commands == []  # no device at the site: nothing to command
    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.receipt_store import ReceiptStore

    assert ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")).get(r.request_id) is not None


def test_the_store_finds_a_subjects_rows_through_its_index_without_statistics(
    tmp_path: Path,
) -> None:
    """The store owns the way to a subject's rows: no ANALYZE, no statistics table, and
    the planner still goes through the (subject, tenant, site) index, not the site."""
    import sqlite3

    from stream_processor.store.sqlite import SqliteEventStore

    path = tmp_path / "events.sqlite"
    store = SqliteEventStore(path)
    now = int(time.time() * 1000)
    subjects = [pseudonym(SECRET, f"r-{i}") for i in range(200)]
    store.put_many([row(subjects[i % 200], now - i) for i in range(4000)])
    assert store.delete_subject("acme", "north", subjects[7]) == 20
    store.close()
    db = sqlite3.connect(path)
    try:
        stats = "SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'"
        assert db.execute(stats).fetchall() == []
        where = "WHERE subject = ? AND tenant = ? AND site = ?"
        for sql in (f"DELETE FROM events {where}", f"SELECT * FROM events {where}"):
            found = db.execute(f"EXPLAIN QUERY PLAN {sql}", (SUBJECT, "acme", "north"))
            plan = str(found.fetchall())
            assert "events_by_subject_site" in plan, plan
    finally:
        db.close()


def test_audit_entries_about_the_subject_logged_after_the_receipt_become_unlinkable(
    tmp_path: Path,
) -> None:
    from stream_processor.audit import record
    from stream_processor.audit.wiring import open_audit

    svc = make_service(tmp_path, [], Recorder())
    r = request()

    async def complete_then_tick() -> None:
        await svc.on_request(r.encode())  # no device: complete at once
        # The ledger follower logs the tombstone a moment later, with an opening.
        audit = open_audit(tmp_path / "state")
        record.consent_record_removed(
            audit.log, tenant="acme", site="north", subject=SUBJECT, purpose=None
        )
        assert len(audit.openings.for_subject(SUBJECT)) == 1
        await svc.tick()
        assert audit.openings.for_subject(SUBJECT) == []
        audit.close()
        await svc.close()

    asyncio.run(complete_then_tick())


def test_cli_status_lists_pending_and_complete_without_pseudonyms_and_prints_receipts(
    tmp_path: Path,
) -> None:
    import json

    from click.testing import CliRunner

    from stream_processor.cli.erasure import erasure

    out = Recorder()
    svc = make_service(tmp_path, [DeviceIdentity("acme", "north", "g1", "d1")], out)
    waiting, done = request(), request(site="south")

    async def two() -> None:
        await svc.on_request(waiting.encode())  # g1/d1 owes an ack
        await svc.on_request(done.encode())  # no device at south: complete
        await svc.close()

    asyncio.run(two())
    env = {"FACEGATE_ERASURE_DB_PATH": str(tmp_path / "rights.sqlite"),
           "FACEGATE_STATE_DIR": str(tmp_path / "state")}  # fmt: skip
    runner = CliRunner()
    listing = runner.invoke(erasure, ["status"], env=env)
    assert listing.exit_code == 0, listing.output
    assert f"{waiting.request_id}  acme/north  pending" in listing.output
    assert "waiting for 1 device(s): g1/d1" in listing.output
    assert f"{done.request_id}  acme/south  complete" in listing.output
    assert SUBJECT not in listing.output
    one = json.loads(
        runner.invoke(erasure, ["status", waiting.request_id, "--json"], env=env).output
    )
    assert (one["status"], one["devices_pending"], one["receipt"]) == ("pending", ["g1/d1"], False)
    missing = runner.invoke(erasure, ["receipt", waiting.request_id], env=env)
    assert missing.exit_code != 0 and "erasure pending" in missing.output
    printed = runner.invoke(erasure, ["receipt", done.request_id], env=env)
    assert printed.exit_code == 0
    assert json.loads(printed.output)["claims"]["request_id"] == done.request_id


class FailsOnce(Recorder):
    """The first consent-ledger write fails after the store step ran beside it."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def consent(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        if not self.failed:
            self.failed = True
            await asyncio.sleep(0.2)  # the store's DELETE commits meanwhile
            raise BrokerError("kafka went away")
        await super().consent(records)


def test_a_resumed_erasure_still_reports_what_the_interrupted_step_deleted(tmp_path: Path) -> None:
    """The consent-ledger write fails after the store's DELETE committed (a broker outage,
    or the worker killed there); the next round resumes: the receipt still reports every
    row and aggregate count the interrupted step removed."""
    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.store.sqlite import SqliteEventStore

    out = FailsOnce()
    svc = make_service(tmp_path, [DeviceIdentity("acme", "north", "g1", "d1")], out)
    r = request()

    async def scenario() -> None:
        with pytest.raises(BrokerError):
            await svc.on_request(r.encode())
        store = SqliteEventStore(tmp_path / "events.sqlite")
        assert store.events_of_subject("acme", "north", SUBJECT) == []  # deleted already
        store.close()
        await svc.tick()  # resumes the cloud side
        await svc.on_ack(ack_for(out.commands[0], "g1", "d1", AckStatus.DONE))
        await svc.close()

    asyncio.run(scenario())
    receipt = ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")).get(r.request_id)
    assert receipt is not None
    counts = {(d.where, d.what): d.count for d in receipt.claims.deletions}
    assert counts[("event_store", "stored events")] == 5
    assert counts[("aggregates", "the subject's counts in per-minute aggregates")] == 5


def test_a_crash_inside_the_store_step_leaves_rows_and_counts_then_the_retry_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker dies between the delete and the aggregate take-back: neither happened
    (one transaction), so the dashboards never lose rows while keeping their counts; the
    retry removes both and the receipt reports each exactly once."""
    from collections import Counter

    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.store.base import StoreUnavailable, row_cell
    from stream_processor.store.sqlite import SqliteEventStore

    out = Recorder()
    svc = make_service(tmp_path, [DeviceIdentity("acme", "north", "g1", "d1")], out)
    seeded = SqliteEventStore(tmp_path / "events.sqlite")
    rows = seeded.all_events()
    seeded.write_batch([], dict(Counter(row_cell(r) for r in rows)))  # what the worker counted
    seeded.close()
    r = request()

    def killed(self: object, counts: object) -> None:
        raise StoreUnavailable("killed between the delete and the take-back")

    async def scenario() -> None:
        with monkeypatch.context() as m:
            m.setattr(SqliteEventStore, "_take_back", killed)
            with pytest.raises(StoreUnavailable):
                await svc.on_request(r.encode())
        store = SqliteEventStore(tmp_path / "events.sqlite")
        assert len(store.events_of_subject("acme", "north", SUBJECT)) == 5  # nothing half done
        assert sum(store.aggregates("acme", 0).values()) == 6
        store.close()
        await svc.tick()
        await svc.on_ack(ack_for(out.commands[0], "g1", "d1", AckStatus.DONE))
        await svc.close()

    asyncio.run(scenario())
    store = SqliteEventStore(tmp_path / "events.sqlite")
    others = [x for x in rows if x.subject == OTHER]
    assert store.aggregates("acme", 0) == dict(Counter(row_cell(x) for x in others))
    store.close()
    receipt = ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")).get(r.request_id)
    assert receipt is not None
    counts = {(d.where, d.what): d.count for d in receipt.claims.deletions}
    assert counts[("event_store", "stored events")] == 5
    assert counts[("aggregates", "the subject's counts in per-minute aggregates")] == 5
