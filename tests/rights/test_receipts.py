"""Signed erasure receipts: issued into the log, verifiable offline; forgeries fail."""

from __future__ import annotations

import pytest

from stream_processor.audit import record
from stream_processor.audit.keys import OperatorKey
from stream_processor.audit.verify import verify_log
from stream_processor.rights.receipts import (
    Deletion,
    ErasureReceipt,
    check_signature,
    issue_receipt,
    receipt_anchors,
)
from tests.support.audit import SUBJECT, AuditRig, fill_log, make_claims, pseudonym_of, uuid7

pytestmark = pytest.mark.unit

@pytest.fixture
def issued(audit_rig: AuditRig, request_id: str) -> tuple[AuditRig, ErasureReceipt]:
    fill_log(audit_rig, [SUBJECT, pseudonym_of("someone-else")], rounds=2)
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
    audit_rig.checkpointer.checkpoint()
    return audit_rig, receipt


def _verify(rig: AuditRig, receipt: ErasureReceipt):  # type: ignore[no-untyped-def]
    return verify_log(rig.lines(), rig.checkpoint_lines(), rig.key.public, receipt_anchors(receipt))


def test_receipt_verifies_against_the_published_log(
    issued: tuple[AuditRig, ErasureReceipt],
) -> None:
    rig, receipt = issued
    assert check_signature(receipt, rig.key.public) == []
    report = _verify(rig, receipt)
    assert report.ok, report.findings
    # The erasure_completed entry plus the subject's two consents and the request.
    assert len(receipt.openings) == 3
    assert report.anchors_checked == 4
    assert receipt.audit.seq == rig.log.head().seq


def test_receipt_round_trips_through_json(
    issued: tuple[AuditRig, ErasureReceipt], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    rig, receipt = issued
    path = tmp_path / "receipt.json"
    path.write_text(receipt.to_json())
    again = ErasureReceipt.load(path)
    assert again == receipt
    assert check_signature(again, rig.key.public) == []


def test_operator_forgets_the_link_after_the_receipt(
    issued: tuple[AuditRig, ErasureReceipt],
) -> None:
    rig, _ = issued
    assert rig.openings.for_subject(SUBJECT) == []
    assert rig.openings.for_subject(pseudonym_of("someone-else"))


def test_modified_count_fails_signature(issued: tuple[AuditRig, ErasureReceipt]) -> None:
    rig, receipt = issued
    deletions = list(receipt.claims.deletions)
    deletions[0] = Deletion(where="event_store", what="stored events", count=170)
    claims = receipt.claims.model_copy(update={"deletions": deletions})
    forged = receipt.model_copy(update={"claims": claims})
    assert check_signature(forged, rig.key.public)


def test_resigned_forgery_fails_against_the_log(issued: tuple[AuditRig, ErasureReceipt]) -> None:
    """Even a receipt re-signed with the real key cannot change what the log says."""
    rig, receipt = issued
    claims = receipt.claims.model_copy(update={"completed_at_ms": 1})
    forged = receipt.model_copy(update={"claims": claims, "signature": ""})
    forged = forged.model_copy(update={"signature": rig.key.sign(forged.signed_bytes())})
    assert check_signature(forged, rig.key.public) == []
    report = _verify(rig, forged)
    assert [f.code for f in report.findings] == ["anchor_body"]
    assert "claims_digest" in report.findings[0].detail


def test_receipt_signed_by_another_key_fails(issued: tuple[AuditRig, ErasureReceipt]) -> None:
    rig, receipt = issued
    intruder = OperatorKey.generate()
    forged = receipt.model_copy(update={"key_id": intruder.key_id, "signature": ""})
    forged = forged.model_copy(update={"signature": intruder.sign(forged.signed_bytes())})
    assert check_signature(forged, rig.key.public)


def test_receipt_for_another_subject_fails(issued: tuple[AuditRig, ErasureReceipt]) -> None:
    rig, receipt = issued
    claims = receipt.claims.model_copy(update={"subject": pseudonym_of("intruder")})
    forged = receipt.model_copy(update={"claims": claims})
    codes = {f.code for f in _verify(rig, forged).findings}
    assert "anchor_subject" in codes


def test_receipt_whose_entry_was_removed_fails(issued: tuple[AuditRig, ErasureReceipt]) -> None:
    rig, receipt = issued
    rig.write_lines(rig.lines()[: receipt.audit.seq])
    rig.paths.checkpoints.write_bytes(b"")
    report = _verify(rig, receipt)
    assert [f.code for f in report.findings] == ["anchor_missing"]


def test_receipt_pointing_at_another_entry_fails(issued: tuple[AuditRig, ErasureReceipt]) -> None:
    rig, receipt = issued
    audit = receipt.audit.model_copy(update={"seq": receipt.audit.seq - 1})
    forged = receipt.model_copy(update={"audit": audit})
    codes = {f.code for f in _verify(rig, forged).findings}
    assert {"anchor_hash", "anchor_type"} <= codes


def test_receipt_naming_another_log_fails(issued: tuple[AuditRig, ErasureReceipt]) -> None:
    rig, receipt = issued
    forged = receipt.model_copy(
        update={"audit": receipt.audit.model_copy(update={"log_id": "another-log"})}
    )
    assert {f.code for f in _verify(rig, forged).findings} == {"anchor_log"}


def test_receipt_not_yet_checkpointed_is_noted(issued: tuple[AuditRig, ErasureReceipt]) -> None:
    rig, _ = issued
    later = issue_receipt(
        make_claims(uuid7(), pseudonym_of("r-late")),
        sink=rig.log,
        key=rig.key,
        log_id="test-log",
        openings=rig.openings,
    )
    report = _verify(rig, later)
    assert report.ok
    assert any("not yet covered by a signed checkpoint" in w for w in report.warnings)
    rig.checkpointer.checkpoint()
    assert not any("not yet covered" in w for w in _verify(rig, later).warnings)


def test_printed_receipt_carries_the_whole_signed_receipt_in_its_qr_code(
    issued: tuple[AuditRig, ErasureReceipt], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import cv2

    from stream_processor.rights.receipt_print import render_receipt

    rig, receipt = issued
    printed = render_receipt(receipt, tmp_path / "receipt.png", "https://gate.example.com/receipt")
    assert printed.qr_box is not None
    image = cv2.imread(str(printed.path), cv2.IMREAD_GRAYSCALE)
    left, top, right, bottom = printed.qr_box
    # A large code (the whole signed receipt, ~1.3 kB): OpenCV's ArUco-based detector reads
    # it as phone scanners do; the classic detector gives up on versions this high.
    text, _, _ = cv2.QRCodeDetectorAruco().detectAndDecode(image[top:bottom, left:right])
    scanned = ErasureReceipt.model_validate_json(text)
    assert scanned == receipt
    assert check_signature(scanned, rig.key.public) == []
    pdf = render_receipt(receipt, tmp_path / "receipt.pdf")
    assert pdf.path.read_bytes().startswith(b"%PDF")
