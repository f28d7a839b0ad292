"""Witnessed receipts on paper and on the web: the QR code carries the proof, and the
/receipt page checks it and says, in Chinese and English, who witnessed the erasure."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_processor.audit import record
from stream_processor.audit.note import COSIGNATURE_V1, Signer
from stream_processor.audit.tlog import CheckpointStore, TreeCheckpointer, operator_signer
from stream_processor.audit.tree import StoredTree
from stream_processor.rights.receipt_proof import attach_proof, check_witnessed
from stream_processor.rights.receipt_qr import b45decode, b45encode, parse_receipt
from stream_processor.rights.receipts import ErasureReceipt, issue_receipt
from tests.support.audit import SUBJECT, make_claims, uuid7
from tests.support.web import WebRig, serve

pytestmark = pytest.mark.unit

WITNESS = Signer("notary.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_V1)


def witnessed(rig: WebRig, cosign: bool = True) -> ErasureReceipt:
    audit = rig.audit
    request_id = uuid7()
    record.erasure_requested(
        audit.log,
        request_id=request_id,
        tenant="acme",
        site="north-garden",
        subject=SUBJECT,
        purposes=None,
        channel="office",
    )
    claims = make_claims(request_id).model_copy(update={"site": "north-garden"})
    receipt = issue_receipt(
        claims, sink=audit.log, key=audit.key, log_id="test-log", openings=audit.openings
    )
    audit.checkpointer.checkpoint()
    tree = StoredTree(audit.paths.tree, audit.paths.log)
    store = CheckpointStore(audit.paths.tree_checkpoints)
    try:
        note = TreeCheckpointer(tree, store, operator_signer(audit.key, "test-log")).checkpoint()
        assert note is not None
        if not cosign:
            return receipt
        store.add_cosignatures(tree.size, [WITNESS.sign(note.text)])
        proved = attach_proof(receipt, tree, store, [WITNESS.verifier])
        assert proved is not None
        return proved
    finally:
        store.close()


def post(rig: WebRig, text: str, lang: str) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with serve(rig) as client:
            resp = await client.post(f"/receipt?lang={lang}", data={"receipt": text})
            return resp.status, await resp.text()

    return asyncio.run(go())


@pytest.fixture
def witness_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_AUDIT_WITNESS_KEYS", json.dumps([WITNESS.verifier.vkey()]))


def test_page_says_who_witnessed_in_both_languages(web_rig: WebRig, witness_env: None) -> None:
    receipt = witnessed(web_rig)
    status, html = post(web_rig, receipt.to_json(), "en")
    assert status == 200, html
    assert "Independently witnessed: notary.example/w1 cosigned" in html
    status, html = post(web_rig, receipt.to_json(), "zh")
    assert status == 200 and "独立见证：notary.example/w1 已联署" in html
    # The proof-less receipt of the same erasure is witnessed through the published log.
    plain = receipt.model_copy(update={"witnessed": None})
    status, html = post(web_rig, plain.to_json(), "en")
    assert status == 200 and "notary.example/w1 cosigned" in html


def test_page_refuses_a_tampered_proof_and_says_when_not_witnessed(
    web_rig: WebRig, witness_env: None
) -> None:
    receipt = witnessed(web_rig)
    assert receipt.witnessed is not None
    bad = receipt.witnessed.model_copy(
        update={"inclusion": ["A" * 43 + "=", *receipt.witnessed.inclusion[1:]]}
    )
    status, html = post(web_rig, receipt.model_copy(update={"witnessed": bad}).to_json(), "en")
    assert status == 422 and "witness proof does not hold" in html
    fresh = witnessed(web_rig, cosign=False)
    status, html = post(web_rig, fresh.to_json(), "zh")
    assert status == 200 and "尚未经独立见证方联署" in html


def test_printed_qr_code_carries_the_witnessed_proof(web_rig: WebRig, tmp_path: Path) -> None:
    import cv2

    from stream_processor.rights.receipt_print import _lines, cosigners, render_receipt

    receipt = witnessed(web_rig)
    assert [n for n, _ in cosigners(receipt)] == ["notary.example/w1"]
    assert any("Witnessed by: notary.example/w1" in x for x in _lines(receipt, False, None))
    assert any("独立见证方 / Witnessed by" in x for x in _lines(receipt, True, None))
    printed = render_receipt(receipt, tmp_path / "receipt.png", "https://gate.example.com/receipt")
    assert printed.qr_box is not None
    image = cv2.imread(str(printed.path), cv2.IMREAD_GRAYSCALE)
    left, top, right, bottom = printed.qr_box
    text, _, _ = cv2.QRCodeDetectorAruco().detectAndDecode(image[top:bottom, left:right])
    assert text.startswith("FG1:")
    scanned = parse_receipt(text)
    assert scanned == receipt
    assert check_witnessed(scanned, web_rig.audit.key.public, [WITNESS.verifier]).ok


def test_base45_round_trip_and_garbage() -> None:
    for data in (b"", b"A", b"AB", b"ietf!", bytes(range(256))):
        assert b45decode(b45encode(data)) == data
    assert b45encode(b"AB") == "BB8"  # RFC 9285's example
    for bad in ("GGW", "a", "::::"):
        with pytest.raises(ValueError):
            b45decode(bad)
    with pytest.raises(ValueError):
        parse_receipt("FG1:" + b45encode(b"not zlib"))
