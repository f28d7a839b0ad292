"""``facegate audit verify --witness-key K --require-witnesses N`` and witnessed receipts:
the rewrite attack that passes the operator-only checks fails once a witness is required."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_processor.audit import record
from stream_processor.audit.note import COSIGNATURE_V1, Signer, Verifier
from stream_processor.rights.receipt_proof import attach_proof, check_witnessed
from stream_processor.rights.receipts import ErasureReceipt, issue_receipt
from stream_processor.witness.service import Result
from tests.conftest import REPO
from tests.support.audit import SUBJECT, make_claims, uuid7
from tests.support.tlog import TlogRig
from tests.support.tlog import audit_verify as verify

pytestmark = pytest.mark.e2e


def erasure(rig: TlogRig) -> ErasureReceipt:
    request_id = uuid7()
    record.erasure_requested(
        rig.audit.log,
        request_id=request_id,
        tenant="acme",
        site="north",
        subject=SUBJECT,
        purposes=None,
        channel="office",
    )
    return issue_receipt(
        make_claims(request_id),
        sink=rig.audit.log,
        key=rig.audit.key,
        log_id=rig.audit.settings.log_id,
        openings=rig.audit.openings,
    )


def witnessed_receipt(rig: TlogRig, tmp_path: Path) -> tuple[ErasureReceipt, Path]:
    rig.add(4)
    receipt = erasure(rig)
    rig.add(2, tag="later")
    rig.checkpoint()
    assert rig.witness.run_once().result == Result.COSIGNED
    w = [Verifier.parse(rig.witness.vkey)]
    proved = attach_proof(receipt, rig.audit.tree, rig.audit.checkpoints, w)
    assert proved is not None and proved.witnessed is not None
    path = tmp_path / "receipt.json"
    path.write_text(proved.to_json())
    return proved, path


def test_witnessed_log_and_receipt_verify(tlog_rig: TlogRig, tmp_path: Path) -> None:
    rig = tlog_rig
    _, path = witnessed_receipt(rig, tmp_path)
    key = rig.witness.vkey
    out = verify(rig, "--witness-key", key, "--require-witnesses", "1", "--receipt", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "witnessed by notary.example/w1" in out.stdout
    assert "its own proof is witnessed by notary.example/w1" in out.stdout
    as_json = verify(rig, "--witness-key", key, "--require-witnesses", "1", "--json")
    doc = json.loads(as_json.stdout)
    assert doc["ok"] and doc["witnessed_size"] == 8 and doc["witnesses"] == ["notary.example/w1"]
    # Without a cosignature under the keys asked for, a witness requirement fails.
    stranger = Signer("other.example/w", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    stranger_key = stranger.verifier.vkey()
    out = verify(
        rig, "--witness-key", key, "--witness-key", stranger_key, "--require-witnesses", "2"
    )
    assert out.returncode == 1 and "not_witnessed" in out.stdout
    bad = verify(rig, "--witness-key", stranger_key, "--require-witnesses", "1")
    assert bad.returncode == 1 and "not_witnessed" in bad.stdout
    garbled = verify(rig, "--witness-key", "other.example/w+" + key.split("+", 1)[1])
    assert garbled.returncode == 1 and garbled.stderr.startswith("Error: the verifier key")
    usage = verify(rig, "--require-witnesses", "1")
    assert usage.returncode == 2 and "needs as many --witness-key" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_no_cosigned_checkpoint_fails_when_witnesses_are_required(tlog_rig: TlogRig) -> None:
    rig = tlog_rig
    rig.add(3)
    rig.checkpoint()  # signed by the operator, never shown to the witness
    assert verify(rig).returncode == 0
    out = verify(rig, "--witness-key", rig.witness.vkey, "--require-witnesses", "1")
    assert out.returncode == 1 and "not_witnessed" in out.stdout, out.stdout


def test_rewrite_attack_fails_require_witnesses(tlog_rig: TlogRig, tmp_path: Path) -> None:
    rig = tlog_rig
    receipt, path = witnessed_receipt(rig, tmp_path)
    held = tmp_path / "checkpoint.txt"  # what anyone fetched from /audit/checkpoint
    assert receipt.witnessed is not None
    held.write_text(receipt.witnessed.checkpoint)
    # Drop the erasure request, rebuild the chain, re-sign everything with the operator key.
    rig.rewrite_without(4)
    rig.add(1, tag="cover")
    rig.checkpoint()
    assert rig.witness.run_once().result == Result.FORK
    plain = verify(rig)
    assert plain.returncode == 0, "the operator-only checks cannot see the rewrite"
    key = rig.witness.vkey
    out = verify(rig, "--witness-key", key, "--require-witnesses", "1")
    assert out.returncode == 1 and "not_witnessed" in out.stdout, out.stdout
    out = verify(rig, "--witness-key", key, "--checkpoint-note", str(held))
    assert out.returncode == 1 and "tree_mismatch" in out.stdout, out.stdout
    out = verify(rig, "--witness-key", key, "--require-witnesses", "1", "--receipt", str(path))
    assert out.returncode == 1 and "tree_mismatch" in out.stdout, out.stdout


def test_receipt_proof_alone_changed_byte_and_wrong_keys(tlog_rig: TlogRig, tmp_path: Path) -> None:
    rig = tlog_rig
    receipt, _ = witnessed_receipt(rig, tmp_path)
    w = [Verifier.parse(rig.witness.vkey)]
    ok = check_witnessed(receipt, rig.audit.key.public, w)
    assert ok.ok, ok.problems
    assert [n for n, _ in ok.witnesses] == ["notary.example/w1"]
    proof = receipt.witnessed
    assert proof is not None
    tampered = [
        proof.model_copy(update={"entry": proof.entry.replace('"at_ms":1', '"at_ms":2', 1)}),
        proof.model_copy(
            update={
                "inclusion": [
                    p[:5] + ("A" if p[5] != "A" else "B") + p[6:] for p in proof.inclusion[:1]
                ]
                + proof.inclusion[1:]
            }
        ),
        proof.model_copy(update={"checkpoint": proof.checkpoint.replace("\n", "\n ", 1)}),
        proof.model_copy(update={"index": proof.index + 1}),
    ]
    for bad in tampered:
        check = check_witnessed(
            receipt.model_copy(update={"witnessed": bad}), rig.audit.key.public, w
        )
        assert not check.ok, bad
    other_claims = receipt.claims.model_copy(update={"request_id": uuid7()})
    assert not check_witnessed(
        receipt.model_copy(update={"claims": other_claims}), rig.audit.key.public, w
    ).ok
    assert not check_witnessed(receipt, rig.audit.key.public, []).ok
    assert receipt.model_copy(update={"witnessed": None}).signed_bytes() == receipt.signed_bytes()
    assert ErasureReceipt.model_validate_json(receipt.to_json()) == receipt


def standalone(rig: TlogRig, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """docs/verifier/verify_audit.py (no facegate code) over the rig's files."""
    from stream_processor.audit.witnessed import published_notes

    args = []
    for i, note in enumerate(published_notes(rig.audit.paths.tree_checkpoints)):
        path = tmp_path / f"note-{i}.txt"
        path.write_bytes(note.encode())
        args += ["--note", str(path)]
    paths = rig.audit.paths
    return subprocess.run(
        [sys.executable, "-I", str(REPO / "docs" / "verifier" / "verify_audit.py"),
         str(paths.log), str(paths.checkpoints), str(paths.public_key), *extra, *args],
        capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip


def test_standalone_verifier_checks_witnesses_too(tlog_rig: TlogRig, tmp_path: Path) -> None:
    rig = tlog_rig
    _, receipt = witnessed_receipt(rig, tmp_path)
    key = rig.witness.vkey
    ok = standalone(rig, tmp_path, str(receipt), "--witness-key", key, "--require-witnesses", "1")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "witnessed: entries 0..7 are in a cosigned checkpoint" in ok.stdout
    rig.rewrite_without(4)
    rig.add(2, tag="cover")
    rig.checkpoint()
    assert rig.witness.run_once().result == Result.FORK
    plain = standalone(rig, tmp_path)
    assert plain.returncode == 0, "the operator-only checks cannot see the rewrite"
    bad = standalone(rig, tmp_path, str(receipt), "--witness-key", key, "--require-witnesses", "1")
    assert bad.returncode == 1, bad.stdout
    assert "were rewritten" in bad.stdout and "no checkpoint matching the log" in bad.stdout
