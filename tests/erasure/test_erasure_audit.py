"""The erasure flow's two calls: requested → completed gives a verifiable, kept receipt."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_processor.audit.checkpoint import Checkpoint, Checkpointer, CheckpointFile
from stream_processor.audit.verify import verify_log
from stream_processor.erasure.audit import ErasureAudit
from stream_processor.errors import BrokerError
from stream_processor.rights.db import open_rights_db
from stream_processor.rights.keycards import KeycardBook, KeycardRequest
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import check_signature, last_copy_gone_by, receipt_anchors
from tests.support.audit import SUBJECT, AuditRig, Clock, make_claims, pseudonym_of

pytestmark = pytest.mark.unit


class Recording:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Checkpoint] = []
        self.fail = fail

    def publish(self, checkpoint: Checkpoint) -> None:
        if self.fail:
            raise BrokerError("down")
        self.sent.append(checkpoint)


def make(rig: AuditRig, tmp_path: Path, publisher: Recording) -> tuple[ErasureAudit, ReceiptStore]:
    store = ReceiptStore(open_rights_db(tmp_path / "rights.sqlite"))
    cp = Checkpointer(
        rig.log, rig.key, CheckpointFile(rig.paths.checkpoints), publisher, "test-log"
    )
    return ErasureAudit(rig.log, rig.key, "test-log", rig.openings, store, cp), store


def test_requested_then_completed(audit_rig: AuditRig, tmp_path: Path, request_id: str) -> None:
    publisher = Recording()
    ea, store = make(audit_rig, tmp_path, publisher)
    ea.requested(
        request_id=request_id,
        tenant="acme",
        site="north",
        subject=SUBJECT,
        purposes=None,
        channel="office",
    )
    receipt = ea.completed(make_claims(request_id))
    assert store.get(request_id) == receipt
    assert store.for_subject(SUBJECT) == [receipt]
    assert check_signature(receipt, audit_rig.key.public) == []
    assert [o.seq for o in receipt.openings] == [0]  # the request entry
    # Signed and published at once: the receipt is covered by a checkpoint now.
    assert publisher.sent and publisher.sent[-1].seq == receipt.audit.seq
    report = verify_log(
        audit_rig.lines(),
        audit_rig.checkpoint_lines(),
        audit_rig.key.public,
        receipt_anchors(receipt),
    )
    assert report.ok and not report.warnings, (report.findings, report.warnings)

    # A redelivered completion does not log twice.
    again = ea.completed(make_claims(request_id))
    assert again == receipt
    assert len(audit_rig.lines()) == 2


def test_completion_survives_a_broker_outage(
    audit_rig: AuditRig, tmp_path: Path, request_id: str
) -> None:
    publisher = Recording(fail=True)
    ea, store = make(audit_rig, tmp_path, publisher)
    receipt = ea.completed(make_claims(request_id))
    assert store.get(request_id) == receipt
    # The checkpoint covering the receipt is signed and kept, waiting to be published.
    file = CheckpointFile(audit_rig.paths.checkpoints)
    assert file.published_offset() == 0
    kept = file.last()
    assert kept is not None
    assert (kept.log_id, kept.seq) == ("test-log", receipt.audit.seq)
    assert kept.signature_valid(audit_rig.key.public)
    assert [cp for _, cp in file.unpublished()] == [kept]
    # Once the broker is back, the next checkpoint call publishes exactly that one.
    publisher.fail = False
    cp = Checkpointer(audit_rig.log, audit_rig.key, file, publisher, "test-log")
    assert cp.publish_pending() == 1
    assert publisher.sent == [kept] and file.unpublished() == []


def test_last_copy_deadline() -> None:
    day, hour = 86_400_000, 3_600_000
    assert last_copy_gone_by(1_000, 7 * day, hour) == 1_000 + 7 * day + hour + 300_000


def test_fulfilled_card_only_request_calls_the_hook(tmp_path: Path, clock: Clock) -> None:
    seen: list[KeycardRequest] = []
    book = KeycardBook(open_rights_db(tmp_path / "r.sqlite"), clock=clock, on_fulfilled=seen.append)
    req = book.request("acme", "north", channel="office", subject=pseudonym_of("r-1"))
    book.cancel(book.request("acme", "north", channel="cli", unit="1").id, "moved out")
    assert seen == []
    card = "c1_" + "9" * 40  # the card's keyed hash (keycard_fulfil.card_digest)
    book.fulfil(req.id, card)
    assert [(r.id, r.subject, r.card_only, r.card_ref) for r in seen] == [
        (req.id, pseudonym_of("r-1"), True, card)
    ]
