"""An erasure is complete, or says why not: the devices it waits for come from the shared
roster (registry ∪ status ledger), a gate heard of later is waited for too, a device
released without acknowledging is waived on the record and named on the receipt, and
the receipt lists every place a copy may remain. Real SQLite store, book, audit log and
key; the status ledger on the real Kafka broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.wire.commands import AckStatus, CommandAck, decode_command, encode
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.audit.entries import EntryType
from stream_processor.erasure import plan
from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.progress import ErasureProgress, ErasureStatus
from stream_processor.erasure.roster import StatusLedgerDevices, merge, shared_roster
from stream_processor.erasure.service import Deps, ErasureService
from stream_processor.erasure.waiver import WaiverBook, waive_device
from stream_processor.errors import InvalidInput
from stream_processor.policy.consent import consent_key
from stream_processor.rights.db import open_rights_db
from stream_processor.rights.keycards import KeycardBook
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import ReceiptClaims, check_signature
from tests.erasure.doubles import OTHER, SUBJECT, Recorder, request, row

G1 = DeviceIdentity("acme", "north", "g1", "d1")
G2 = DeviceIdentity("acme", "north", "g2", "d2")


class Harness:
    """The service over a real store, book, audit log and key; ``devices`` is the roster."""

    def __init__(
        self,
        tmp: Path,
        devices: Callable[[], list[DeviceIdentity]],
        connect: Callable[[], Any] | None = None,
    ) -> None:
        from prometheus_client import CollectorRegistry

        from stream_processor.store.sqlite import SqliteEventStore

        self.tmp = tmp
        self.connect = connect or (lambda: open_rights_db(tmp / "rights.sqlite"))
        self.out = Recorder()
        store_path = tmp / "events.sqlite"
        seed = SqliteEventStore(store_path)
        now = int(time.time() * 1000)
        seed.put_many([row(SUBJECT, now - i * 1000) for i in range(3)] + [row(OTHER, now)])
        seed.close()

        def deps() -> Deps:
            from stream_processor.audit.wiring import open_audit
            from stream_processor.erasure.audit import ErasureAudit

            db = self.connect()
            audit = open_audit(tmp / "state")
            ea = ErasureAudit(audit.log, audit.key, "unit", audit.openings, ReceiptStore(db))
            return Deps(
                store=SqliteEventStore(store_path), book=ErasureBook(db), audit=ea,
                ledger_keys=lambda: [consent_key("acme", "north", SUBJECT, "access_control")],
                devices=devices,
                retentions=lambda: [plan.TopicRetention.from_configs("raw", {"retention.ms": "1"})],
                consent_topic="consent", forget_openings=audit.openings.forget,
                forget_keycards=KeycardBook(db).forget_subject,
                retired=WaiverBook(db).retired,
            )  # fmt: skip

        self.svc = ErasureService(
            deps, self.out, ErasureMetrics(CollectorRegistry()), resend_after_s=3600
        )

    def book(self) -> ErasureBook:
        return ErasureBook(self.connect())

    def audit(self) -> Any:
        from stream_processor.audit.wiring import open_audit

        return open_audit(self.tmp / "state")

    def ack(self, who: DeviceIdentity) -> bytes:
        cmd = decode_command(self.out.commands[0])
        return encode(CommandAck(
            schema_version=1, command_id=cmd.command_id, type=cmd.type, tenant=cmd.tenant,
            site=cmd.site, gate=who.gate, device=who.device, subject=cmd.subject,
            status=AckStatus.DONE, templates_removed=1, outbox_events_purged=0,
            acked_at_ms=int(time.time() * 1000), request_id=cmd.request_id,
        ))  # fmt: skip


@pytest.mark.unit
def test_a_gate_registered_later_is_waited_for_and_gets_the_command_at_once(
    tmp_path: Path, rights_connect: Callable[[], Any]
) -> None:
    roster = [G1]
    h = Harness(tmp_path, lambda: list(roster), connect=rights_connect)
    r = request()

    async def scenario() -> None:
        await h.svc.on_request(r.encode())
        assert len(h.out.commands) == 1
        roster.append(G2)  # registered (or first reported) after the request
        await h.svc.tick()
        # Sent again at once (not after the re-send interval): the new gate has it.
        assert len(h.out.commands) == 2
        await h.svc.on_ack(h.ack(G1))
        progress = h.book().get(r.request_id)
        assert progress is not None and progress.status is ErasureStatus.PENDING
        assert progress.pending_devices == ["g2/d2"]
        await h.svc.on_ack(h.ack(G2))
        await h.svc.close()

    asyncio.run(scenario())
    receipt = ReceiptStore(rights_connect()).get(r.request_id)
    assert receipt is not None
    assert [(d.gate, d.device) for d in receipt.claims.devices] == [("g1", "d1"), ("g2", "d2")]


@pytest.mark.unit
def test_waiver_is_audited_releases_only_the_owed_device_and_is_named_on_the_receipt(
    tmp_path: Path, rights_connect: Callable[[], Any]
) -> None:
    h = Harness(tmp_path, lambda: [G1, G2], connect=rights_connect)
    r = request()
    audit = h.audit()

    async def scenario() -> None:
        await h.svc.on_request(r.encode())
        await h.svc.on_ack(h.ack(G1))
        book = h.book()
        with pytest.raises(InvalidInput, match="one of"):
            waive_device(book, audit.log, G2, reason="tired of waiting", by="po-lee", now_ms=1)
        with pytest.raises(InvalidInput, match="owes no pending erasure"):
            waive_device(book, audit.log, G1, reason="destroyed", by="po-lee", now_ms=1)
        with pytest.raises(InvalidInput, match="account id"):
            waive_device(book, audit.log, G2, reason="destroyed", by="Lee Wei", now_ms=1)
        ids = waive_device(book, audit.log, G2, reason="stolen", by="po-lee", now_ms=5)
        assert ids == [r.request_id]
        await h.svc.tick()  # complete by its parts now: the worker issues the receipt
        await h.svc.close()

    asyncio.run(scenario())
    receipt = ReceiptStore(rights_connect()).get(r.request_id)
    assert receipt is not None
    (w,) = receipt.claims.waived
    assert (w.gate, w.device, w.reason, w.by) == ("g2", "d2", "stolen", "po-lee")
    entries = [e for e in audit.log.entries() if e.type is EntryType.ERASURE_WAIVED]
    assert [e.seq for e in entries] == [w.audit_seq]
    assert entries[0].body == {
        "device": "g2/d2", "reason": "stolen", "by": "po-lee", "requests": [r.request_id],
    }  # fmt: skip
    assert audit.log.get(w.audit_seq).subject is None  # per device, not per person
    # Only the device that acknowledged is on the receipt as having erased.
    assert [(d.gate, d.device) for d in receipt.claims.devices] == [("g1", "d1")]
    remaining = {x.where: x.until_ms for x in receipt.claims.remaining}
    assert remaining["edge:g2/d2"] == -1  # never confirmed: no bound is claimed
    assert check_signature(receipt, audit.key.public) == []
    audit.close()


@pytest.mark.unit
def test_receipt_lists_every_place_a_copy_can_remain_and_the_key_card_link_goes(
    tmp_path: Path,
) -> None:
    cards = KeycardBook(open_rights_db(tmp_path / "rights.sqlite"))
    mine = cards.request("acme", "north", channel="office", unit="3-1201", subject=SUBJECT)
    other = cards.request("acme", "north", channel="office", unit="3-1202", subject=OTHER)
    h = Harness(tmp_path, lambda: [G1])
    r = request()

    async def scenario() -> None:
        await h.svc.on_request(r.encode())
        await h.svc.on_ack(h.ack(G1))
        await h.svc.close()

    asyncio.run(scenario())
    receipt = ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")).get(r.request_id)
    assert receipt is not None
    done = receipt.claims.completed_at_ms
    remaining = {x.where: x.until_ms for x in receipt.claims.remaining}
    assert remaining["kafka:raw"] >= done
    assert remaining["mosquitto:queued"] == done + plan.MQTT_SESSION_BOUND_MS
    assert remaining["store:free_pages"] == done  # secure_delete + WAL truncated
    counts = {d.where: d.count for d in receipt.claims.deletions}
    assert counts["rights_db:keycard_requests"] == 1
    assert cards.get(mine.id).subject is None and cards.get(mine.id).unit == "3-1201"
    assert cards.get(other.id).subject == OTHER


@pytest.mark.unit
def test_claims_without_waivers_or_remnants_serialise_as_before() -> None:
    """A receipt issued before ``waived``/``remaining`` existed keeps its digest."""
    doc: dict[str, Any] = {
        "format": "facegate.erasure-receipt/1", "request_id": request().request_id,
        "tenant": "acme", "site": "north", "subject": SUBJECT, "scope": {"purposes": None},
        "deletions": [], "devices": [], "kafka": [], "requested_at_ms": 1, "completed_at_ms": 2,
    }  # fmt: skip
    claims = ReceiptClaims.model_validate(doc)
    assert claims.model_dump(mode="json") == doc


@pytest.mark.unit
def test_roster_merges_registry_and_reported_devices_once() -> None:
    reported = [G2, DeviceIdentity("acme", "south", "g1", "d1")]
    roster = shared_roster(lambda: [G1, G2], lambda: reported)()
    assert roster == merge([G1], reported)
    assert plan.site_devices(roster, "acme", "north") == [("g1", "d1"), ("g2", "d2")]


@pytest.mark.component
def test_unregistered_gate_on_the_status_ledger_keeps_the_erasure_pending(
    running_stack: Any, tmp_path: Path
) -> None:
    """The registry knows no device of the site (the attack: a site with no registered
    devices completed with ``devices: []``), but a gate reported status: the erasure
    waits for it; a gate first heard of after the request is added on the next round;
    a tombstone on the ledger does not take a gate off the roster."""
    from stream_processor.runtime.kafka_auth import Role
    from tests.support.kafka import grant_pipeline, login_kwargs, revoke_private
    from tests.support.records import private_topics, produce, status_payload

    bootstrap = running_stack.settings().kafka_bootstrap
    topics = private_topics(bootstrap, "device_status")
    topic = topics.device_status

    def status(ident: DeviceIdentity) -> tuple[bytes, bytes]:
        value = status_payload(tenant=ident.tenant, site=ident.site, gate=ident.gate,
                               device=ident.device)  # fmt: skip
        return ident.username.encode(), value

    # The roster reader is the erasure worker's, logged in as it, on the production plan.
    app = "facegate-processor"
    grants = grant_pipeline(running_stack, topics, app, f"{app}-erasure")
    produce(bootstrap, topic, [status(G1), (b"junk", b"not a status")])
    erasure = login_kwargs(running_stack, Role.ERASURE)
    reported = StatusLedgerDevices(bootstrap, topic, timeout_s=20, auth=erasure)
    h = Harness(tmp_path, shared_roster(lambda: [], reported.devices))
    r = request()

    async def scenario() -> None:
        await h.svc.on_request(r.encode())
        progress = h.book().get(r.request_id)
        assert progress is not None and progress.expected == ["g1/d1"]
        produce(bootstrap, topic, [status(G2), (G1.username.encode(), None)])
        await h.svc.tick()
        progress = h.book().get(r.request_id)
        assert progress is not None and progress.pending_devices == ["g1/d1", "g2/d2"]
        await h.svc.on_ack(h.ack(G1))
        assert h.book().get(r.request_id).status is ErasureStatus.PENDING  # type: ignore[union-attr]
        await h.svc.on_ack(h.ack(G2))
        await h.svc.close()

    try:
        asyncio.run(scenario())
    finally:
        reported.close()
        revoke_private(running_stack, grants)
    assert ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")).get(r.request_id) is not None


@pytest.mark.component
def test_cli_waive_is_the_officers_act_with_one_error_line_for_a_mistake(tmp_path: Path) -> None:
    import os
    import subprocess

    from stream_processor.rights.db import rights_db_path
    from tests.conftest import FACEGATE

    state = tmp_path / "state"
    book = ErasureBook(open_rights_db(rights_db_path(state)))
    r = request()
    book.add(ErasureProgress.start(r, plan.command_id_of(r), [("g2", "d2")]), 1)
    env = {**os.environ, "FACEGATE_STATE_DIR": str(state)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FACEGATE, "erasure", *args], env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    for bad, why in (
        (["--device", "acme.north.g2", "--reason", "lost", "--by", "po-lee"], "TENANT.SITE"),
        (["--device", "acme.north.g2.d2", "--reason", "bored", "--by", "po-lee"], "bored"),
    ):
        out = run("waive", *bad)
        assert out.returncode != 0 and why in out.stderr and "Traceback" not in out.stderr
    ok = run("waive", "--device", "acme.north.g2.d2", "--reason", "destroyed", "--by", "po-lee")
    assert ok.returncode == 0, ok.stderr
    assert f"for 1 erasure(s): {r.request_id}" in ok.stdout
    status = run("status", r.request_id)
    assert "pending" in status.stdout and "waived: g2/d2" in status.stdout  # stores: not yet
    progress = book.get(r.request_id)
    assert progress is not None and sorted(progress.waived) == ["g2/d2"]
    assert "later erasures of the site start with it waived" in ok.stdout


@pytest.mark.unit
def test_a_retired_gate_is_named_on_later_receipts_without_holding_them(tmp_path: Path) -> None:
    """Waived for good (retired): a later erasure still lists the gate, starts with it
    waived and says so on the receipt, instead of waiting forever or forgetting it."""
    h = Harness(tmp_path, lambda: [G1, G2])
    audit = h.audit()
    retire = WaiverBook(open_rights_db(tmp_path / "rights.sqlite"))
    book = h.book()
    assert waive_device(book, audit.log, G2, reason="destroyed", by="po-lee", now_ms=7,
                        retire=retire) == []  # fmt: skip
    r = request()

    async def scenario() -> None:
        await h.svc.on_request(r.encode())
        progress = h.book().get(r.request_id)
        assert progress is not None and progress.pending_devices == ["g1/d1"]
        await h.svc.on_ack(h.ack(G1))
        await h.svc.close()

    asyncio.run(scenario())
    receipt = ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")).get(r.request_id)
    assert receipt is not None
    (w,) = receipt.claims.waived
    assert (w.gate, w.device, w.reason, w.waived_at_ms) == ("g2", "d2", "destroyed", 7)
    assert {x.where: x.until_ms for x in receipt.claims.remaining}["edge:g2/d2"] == -1
    audit.close()


def test_an_erasure_worker_on_another_host_waits_for_every_registered_gate(
    rights_kind: str, rights_env: dict[str, str], tmp_path: Path
) -> None:
    """Host A registers the site's gates; the erasure worker runs on host B with an EMPTY
    state dir (no account file, no local database) and no status ever heard. On the shared
    PostgreSQL registry B computes A's roster and the erasure waits for both gates (the
    attack: a site with gates completing with ``devices: []``). With SQLite each host has
    its own file, so B sees no gate: why a multi-host deployment must set the DSN."""
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.settings import RightsDbSettings
    from stream_processor.runtime.registry import DeviceRegistry

    dsn = rights_env.get("FACEGATE_RIGHTS_DSN")
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    a_db = connect_rights_db(host_a, RightsDbSettings(dsn=dsn))
    for gate in (G1, G2, DeviceIdentity("acme", "south", "g9", "d9")):
        DeviceRegistry(a_db).register(gate, "os:ops")
    DeviceRegistry(a_db).remove(G2, "os:ops")  # off the broker, still owing its ack
    b_dbs: list[Any] = []

    def connect_b() -> Any:
        b_dbs.append(connect_rights_db(host_b, RightsDbSettings(dsn=dsn)))
        return b_dbs[-1]

    roster_b = shared_roster(DeviceRegistry(connect_b()).roster, lambda: [])
    h = Harness(host_b, roster_b, connect=connect_b)
    r = request()

    async def scenario() -> None:
        await h.svc.on_request(r.encode())
        progress = h.book().get(r.request_id)
        assert progress is not None
        if rights_kind == "sqlite":
            assert progress.expected == []  # the single-host default cannot see host A
            return
        assert roster_b() == DeviceRegistry(a_db).roster()
        assert progress.expected == ["g1/d1", "g2/d2"]
        assert len(h.out.commands) == 1  # asked, though neither gate ever reported
        await h.svc.on_ack(h.ack(G1))
        progress = h.book().get(r.request_id)
        assert progress is not None and progress.status is ErasureStatus.PENDING
        assert progress.pending_devices == ["g2/d2"]
        await h.svc.on_ack(h.ack(G2))

    try:
        asyncio.run(scenario())
        asyncio.run(h.svc.close())
        if rights_kind == "postgres":
            # The receipt is on the shared database: host A hands it out.
            from stream_processor.rights.receipt_store import ReceiptStore

            receipt = ReceiptStore(a_db).get(r.request_id)
            assert receipt is not None
            assert [(d.gate, d.device) for d in receipt.claims.devices] == [
                ("g1", "d1"), ("g2", "d2"),
            ]  # fmt: skip
            assert not (host_b / "rights").exists()  # nothing of it on host B's disk
    finally:
        for db in [a_db, *b_dbs]:
            db.close()
