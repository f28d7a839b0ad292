"""Subject access export: what the rights parts hold about one subject, opened for them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stream_processor.audit import record
from stream_processor.rights.db import open_rights_db
from stream_processor.rights.export import FORMAT, build_export
from stream_processor.rights.keycards import KeycardBook
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import issue_receipt
from stream_processor.runtime.kafka_auth import Role
from tests.conftest import FACEGATE, StackHandle
from tests.support.audit import AuditRig, fill_log, make_claims, pseudonym_of, uuid7
from tests.support.kafka import create_topics, login_kwargs, private_host, revoke_private

SUBJECT = pseudonym_of("resident-00042")
OTHER = pseudonym_of("resident-00043")


class Events:
    def events_for_subject(self, tenant: str, site: str, subject: str) -> list[dict[str, object]]:
        return [{"event_id": "e1", "kind": "face_match", "subject": subject}]


@pytest.mark.unit
def test_export_before_and_after_erasure(audit_rig: AuditRig, tmp_path: Path) -> None:
    db = open_rights_db(tmp_path / "rights.sqlite")
    keycards = KeycardBook(db, audit=audit_rig.log, clock=audit_rig.clock)
    receipts = ReceiptStore(db)
    fill_log(audit_rig, [SUBJECT, OTHER], rounds=2)
    keycards.request("acme", "north", channel="office", subject=SUBJECT, unit="4-0404")
    keycards.request("acme", "north", channel="office", subject=OTHER, unit="9-0909")

    before = build_export(
        "acme",
        "north",
        SUBJECT,
        audit_entries=audit_rig.log.entries(),
        openings=audit_rig.openings,
        keycards=keycards,
        receipts=receipts,
        events=Events(),
    )
    assert before.format == FORMAT
    assert [e.type for e in before.audit_entries] == [
        "consent_changed",
        "consent_changed",
        "keycard_requested",
    ]
    assert [k["unit"] for k in before.keycard_requests] == ["4-0404"]
    assert before.stored_events == [{"event_id": "e1", "kind": "face_match", "subject": SUBJECT}]
    assert any(u.startswith("consent_history") for u in before.unavailable)
    assert not any(u.startswith("stored_events") for u in before.unavailable)

    request_id = uuid7()
    record.erasure_requested(
        audit_rig.log,
        request_id=request_id,
        tenant="acme",
        site="north",
        subject=SUBJECT,
        purposes=None,
        channel="office",
    )
    receipt = issue_receipt(
        make_claims(request_id),
        sink=audit_rig.log,
        key=audit_rig.key,
        log_id="test-log",
        openings=audit_rig.openings,
    )
    # The operator no longer links the log to the subject...
    blind = build_export(
        "acme",
        "north",
        SUBJECT,
        audit_entries=audit_rig.log.entries(),
        openings=audit_rig.openings,
        keycards=keycards,
        receipts=None,
    )
    assert blind.audit_entries == [] and blind.receipts == []
    # ...the receipt holder does.
    receipts.save(receipt)
    after = build_export(
        "acme",
        "north",
        SUBJECT,
        audit_entries=audit_rig.log.entries(),
        openings=audit_rig.openings,
        keycards=keycards,
        receipts=receipts,
    )
    assert [e.type for e in after.audit_entries] == [
        "consent_changed",
        "consent_changed",
        "keycard_requested",
        "erasure_requested",
        "erasure_completed",
    ]
    assert after.receipts == [receipt]
    assert OTHER not in after.model_dump_json()
    db.close()


@pytest.mark.e2e
def test_cli_export_with_a_brought_receipt(tmp_path: Path) -> None:
    from stream_processor.audit.wiring import open_audit

    state = tmp_path / "state"
    audit = open_audit(state)
    record.consent_changed(
        audit.log,
        tenant="acme",
        site="north",
        subject=SUBJECT,
        purpose="access_control",
        granted=True,
        by_guardian=False,
    )
    receipt = issue_receipt(
        make_claims(uuid7()),
        sink=audit.log,
        key=audit.key,
        log_id="facegate",
        openings=audit.openings,
    )
    audit.close()
    brought = tmp_path / "receipt.json"
    brought.write_text(receipt.to_json())
    out = tmp_path / "export.json"
    done = subprocess.run(
        [
            FACEGATE,
            "subject",
            "export",
            "--tenant",
            "acme",
            "--site",
            "north",
            "--subject",
            SUBJECT,
            "--receipt",
            str(brought),
            "--out",
            str(out),
            "--no-ledger",
        ],
        env={**os.environ, "FACEGATE_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    # ...and the export's own entry: every export is on the record, the subject sees it.
    assert [e["type"] for e in doc["audit_entries"]] == [
        "consent_changed", "erasure_completed", "subject_exported"
    ]  # fmt: skip
    assert doc["receipts"][0]["claims"]["request_id"] == receipt.claims.request_id
    assert doc["stored_events"] == []  # the (empty) store was read
    assert "note: consent_history" in done.stderr


@pytest.mark.component
def test_export_reads_the_store_and_the_consent_ledger(
    running_stack: StackHandle, tmp_path: Path, tag: str, request: pytest.FixtureRequest
) -> None:
    from edge_agent.wire import Decision, EventKind, GateEvent, new_event_id
    from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
    from stream_processor.runtime.ledger_client import write_records
    from stream_processor.runtime.settings import Topics
    from stream_processor.store.base import StoredEvent
    from stream_processor.store.sqlite import SqliteEventStore

    store_path = tmp_path / "events.sqlite"
    store = SqliteEventStore(store_path)
    rows = [
        StoredEvent.from_event(
            GateEvent(
                schema_version=1,
                event_id=new_event_id(),
                seq=i,
                tenant="acme",
                site="north",
                gate="main",
                device="cam-1",
                kind=EventKind.FACE_MATCH,
                decision=Decision.GRANTED,
                purpose="access_control",
                occurred_at_ms=1_790_000_000_000 + i,
                subject=who,
            ),
            stored_at_ms=1_790_000_000_000,
            expires_at_ms=None,
        )
        for i, who in enumerate([SUBJECT, OTHER, SUBJECT])
    ]
    store.put_many(rows)
    store.close()

    topics = Topics(consent=f"t.{tag}.consent")
    bootstrap = running_stack.settings().kafka_bootstrap
    create_topics(running_stack, topics, {topics.consent})
    # The export runs as another host's office CLI: its own state dir, the office's
    # login only, and the production grants on this test's consent topic.
    grants = private_host(running_stack, tmp_path / "state", topics, Role.OFFICE)
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    records = [
        ConsentRecord(
            tenant="acme",
            site="north",
            subject=who,
            purpose="access_control",
            status=ConsentStatus.GRANTED,
            given_by=GivenBy.SELF,
            evidence_ref="form-7",
            at_ms=1_790_000_000_000,
        )
        for who in (SUBJECT, OTHER)
    ]
    write_records(
        bootstrap, topics.consent, [(r.key, r.encode()) for r in records],
        auth=login_kwargs(running_stack),
    )  # fmt: skip

    env = {
        **os.environ,
        **running_stack.env,
        "FACEGATE_STATE_DIR": str(tmp_path / "state"),
        "FACEGATE_TOPIC_CONSENT": topics.consent,
        "FACEGATE_PROCESSOR_STORE_PATH": str(store_path),
    }
    out = tmp_path / "export.json"
    done = subprocess.run(
        [
            FACEGATE,
            "subject",
            "export",
            "--tenant",
            "acme",
            "--site",
            "north",
            "--subject",
            SUBJECT,
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert [e["seq"] for e in doc["stored_events"]] == [0, 2]
    assert {e["subject"] for e in doc["stored_events"]} == {SUBJECT}
    assert [(c["subject"], c["status"]) for c in doc["consent_history"]] == [(SUBJECT, "granted")]
    assert OTHER not in out.read_text()
    assert not any(u.startswith(("stored_events", "consent_history")) for u in doc["unavailable"])


def test_cli_export_lists_a_pending_erasure(tmp_path: Path) -> None:
    """Subject access shows an erasure still waiting for a gate device, without leaking it."""
    import time

    from edge_agent.wire import new_event_id
    from stream_processor.erasure.book import ErasureBook
    from stream_processor.erasure.progress import ErasureProgress, ErasureRequest
    from stream_processor.rights.db import open_rights_db, rights_db_path

    state = tmp_path / "state"
    now_ms = int(time.time() * 1000)
    request = ErasureRequest(
        request_id=new_event_id(), tenant="acme", site="north", subject=SUBJECT,
        channel="office", requested_at_ms=now_ms,
    )  # fmt: skip
    db = open_rights_db(rights_db_path(state))
    ErasureBook(db).add(
        ErasureProgress.start(request, new_event_id(), [("gate-1", "cam-1")]), now_ms
    )
    db.close()
    out = tmp_path / "export.json"
    done = subprocess.run(
        [FACEGATE, "subject", "export", "--tenant", "acme", "--site", "north",
         "--subject", SUBJECT, "--out", str(out), "--no-ledger"],
        env={**os.environ, "FACEGATE_STATE_DIR": str(state)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert len(doc["pending_erasures"]) == 1
    assert "gate-1/cam-1" in json.dumps(doc["pending_erasures"])
