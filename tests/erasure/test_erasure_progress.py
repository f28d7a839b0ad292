"""Erasure progress: pending while a device is offline, complete after its ack, then a receipt."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.wire.commands import AckStatus, CommandAck, CommandType
from stream_processor.audit.verify import verify_log
from stream_processor.erasure.audit import ErasureAudit
from stream_processor.erasure.progress import (
    AckOutcome,
    ErasureProgress,
    ErasureRequest,
    ErasureStatus,
    decode_progress,
)
from stream_processor.erasure.request import decode_request
from stream_processor.rights.db import open_rights_db
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import Deletion, KafkaCopy, receipt_anchors
from tests.support.audit import AuditRig, pseudonym_of, uuid7

pytestmark = pytest.mark.unit

SUBJECT = pseudonym_of("resident-00077")
T0 = 1_790_000_000_000


def request() -> ErasureRequest:
    return ErasureRequest(
        request_id=uuid7(),
        tenant="acme",
        site="north",
        subject=SUBJECT,
        channel="office",
        requested_at_ms=T0,
    )


def ack(
    p: ErasureProgress, gate: str, device: str, status: AckStatus = AckStatus.DONE, **kw: object
) -> CommandAck:
    fields: dict[str, object] = dict(
        schema_version=1,
        command_id=p.command_id,
        type=CommandType.ERASE_SUBJECT,
        tenant="acme",
        site="north",
        gate=gate,
        device=device,
        subject=SUBJECT,
        status=status,
        templates_removed=1,
        outbox_events_purged=2,
        acked_at_ms=T0 + 5000,
        request_id=p.request.request_id,
    )
    fields.update(kw)
    return CommandAck(**fields)  # type: ignore[arg-type]


def started() -> ErasureProgress:
    return ErasureProgress.start(request(), uuid7(), [("main", "cam-1"), ("east", "cam-2")])


def test_offline_device_keeps_it_pending_until_it_acks() -> None:
    p = started()
    p = p.with_deletions([Deletion(where="event_store", what="stored events", count=12)])
    p, outcome = p.with_ack(ack(p, "main", "cam-1"))
    assert outcome is AckOutcome.ACCEPTED
    assert p.status is ErasureStatus.PENDING
    status = p.describe(T0 + 60_000)
    assert status["devices_pending"] == ["east/cam-2"] and status["age_s"] == 60
    assert SUBJECT not in str(status)
    with pytest.raises(ValueError, match="pending"):
        p.claims(T0 + 60_000)

    # The offline device reports a failure once, then reconnects and succeeds.
    p, outcome = p.with_ack(ack(p, "east", "cam-2", AckStatus.FAILED, detail="disk full"))
    assert outcome is AckOutcome.FAILED and p.describe(T0)["device_failures"] == {
        "east/cam-2": "disk full"
    }
    p, outcome = p.with_ack(ack(p, "east", "cam-2"))
    assert outcome is AckOutcome.ACCEPTED
    assert p.status is ErasureStatus.COMPLETE
    assert p.describe(T0)["device_failures"] == {}
    assert p.with_ack(ack(p, "east", "cam-2"))[1] is AckOutcome.DUPLICATE


def test_stores_must_report_too() -> None:
    p = started()
    for gate, device in (("main", "cam-1"), ("east", "cam-2")):
        p, _ = p.with_ack(ack(p, gate, device))
    assert p.status is ErasureStatus.PENDING
    assert p.with_deletions([]).status is ErasureStatus.COMPLETE  # nothing stored is an answer


@pytest.mark.parametrize(
    "change",
    [
        {"subject": pseudonym_of("someone-else")},
        {"site": "south"},
        {"type": CommandType.WITHDRAW_CONSENT},
        {"request_id": "01890000-0000-7000-8000-000000000000"},
    ],
)
def test_acks_of_other_requests_are_ignored(change: dict[str, object]) -> None:
    p = started()
    same, outcome = p.with_ack(ack(p, "main", "cam-1", **change))
    assert outcome is AckOutcome.NOT_THIS_REQUEST and same == p


def test_progress_and_request_round_trip() -> None:
    p = started().with_deletions([Deletion(where="event_store", what="stored events", count=3)])
    p, _ = p.with_ack(ack(p, "main", "cam-1"))
    assert decode_progress(p.encode()) == p
    assert decode_request(p.request.encode()) == p.request


def test_complete_erasure_gives_a_verifiable_receipt(audit_rig: AuditRig, tmp_path: Path) -> None:
    p = started()
    ea = ErasureAudit(
        audit_rig.log,
        audit_rig.key,
        "test-log",
        audit_rig.openings,
        ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")),
        audit_rig.checkpointer,
    )
    ea.requested(
        request_id=p.request.request_id,
        tenant="acme",
        site="north",
        subject=SUBJECT,
        purposes=None,
        channel="office",
    )
    p = p.with_deletions(
        [
            Deletion(where="event_store", what="stored events", count=12),
            Deletion(where="kafka:facegate.consent", what="consent records (tombstoned)", count=1),
        ]
    )
    for gate, device in (("main", "cam-1"), ("east", "cam-2")):
        p, _ = p.with_ack(ack(p, gate, device))
    claims = p.claims(T0 + 9000, [KafkaCopy(topic="facegate.events.raw", gone_by_ms=T0 + 10**9)])
    assert [d.where for d in claims.deletions] == [
        "event_store",
        "kafka:facegate.consent",
        "edge:east/cam-2",
        "edge:east/cam-2",
        "edge:main/cam-1",
        "edge:main/cam-1",
    ]
    assert claims.scope.purposes is None
    receipt = ea.completed(claims)
    report = verify_log(
        audit_rig.lines(),
        audit_rig.checkpoint_lines(),
        audit_rig.key.public,
        receipt_anchors(receipt),
    )
    assert report.ok and not report.warnings, (report.findings, report.warnings)
