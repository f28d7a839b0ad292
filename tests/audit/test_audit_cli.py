"""``facegate audit verify`` the way a resident or a notary runs it: files and a public key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stream_processor.audit.wiring import open_audit
from stream_processor.rights.receipts import issue_receipt
from tests.conftest import FACEGATE
from tests.support.audit import make_claims, pseudonym_of, uuid7

pytestmark = pytest.mark.e2e


def run(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACEGATE_STATE_DIR": str(state)}
    return subprocess.run(
        [FACEGATE, "audit", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_verify_export_tamper_and_receipt(tmp_path: Path) -> None:
    state = tmp_path / "state"
    audit = open_audit(state)
    from stream_processor.audit import record

    subject = pseudonym_of("resident-7")
    for i in range(4):
        record.consent_changed(
            audit.log,
            tenant="acme",
            site="north",
            subject=subject,
            purpose="access_control",
            granted=i % 2 == 0,
            by_guardian=False,
        )
    request_id = uuid7()
    receipt = issue_receipt(
        make_claims(request_id, subject),
        sink=audit.log,
        key=audit.key,
        log_id=audit.settings.log_id,
        openings=audit.openings,
    )
    audit.close()
    receipt_path = tmp_path / "receipt.json"
    receipt_path.write_text(receipt.to_json())

    done = run(state, "checkpoint", "--no-publish")
    assert done.returncode == 0, done.stderr
    assert "checkpoint at seq 4" in done.stdout

    published = tmp_path / "published"
    assert run(state, "export", "--out", str(published)).returncode == 0
    # The verifier has only the published folder: a different (empty) state dir.
    outsider = tmp_path / "outsider"
    args = [
        "verify",
        "--log",
        str(published / "log.jsonl"),
        "--checkpoints",
        str(published / "checkpoints.jsonl"),
        "--public-key",
        str(published / "operator-public.pem"),
    ]
    ok = run(outsider, *args, "--receipt", str(receipt_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 receipt(s) verified" in ok.stdout
    assert f"receipt {request_id}: acme/north, subject {subject}, scope: everything" in ok.stdout
    assert "deleted     17  stored events (event_store)" in ok.stdout
    assert "device main/cam-1 acknowledged" in ok.stdout
    assert not (outsider / "secrets").exists()

    lines = (published / "log.jsonl").read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"granted"', b'"grantee"')
    (published / "log.jsonl").write_bytes(b"".join(lines))
    bad = run(outsider, *args)
    assert bad.returncode == 1
    assert "FAIL entry seq=2 (line 3): hash_mismatch" in bad.stdout

    forged = receipt.model_copy(
        update={"claims": receipt.claims.model_copy(update={"site": "south"})}
    )
    forged_path = tmp_path / "forged.json"
    forged_path.write_text(forged.to_json())
    (published / "log.jsonl").write_bytes(b"".join(lines).replace(b'"grantee"', b'"granted"'))
    refused = run(outsider, *args, "--receipt", str(forged_path))
    assert refused.returncode == 1
    assert "bad_signature" in refused.stdout


def test_rotated_key_keeps_old_checkpoints_and_receipts_verifiable(tmp_path: Path) -> None:
    from stream_processor.audit import record

    state = tmp_path / "state"
    audit = open_audit(state)
    subject = pseudonym_of("resident-8")
    record.consent_changed(
        audit.log,
        tenant="acme",
        site="north",
        subject=subject,
        purpose="access_control",
        granted=True,
        by_guardian=False,
    )
    old_receipt = issue_receipt(
        make_claims(uuid7(), subject),
        sink=audit.log,
        key=audit.key,
        log_id=audit.settings.log_id,
        openings=audit.openings,
    )
    old_key_id = audit.key.key_id
    audit.close()
    (tmp_path / "old.json").write_text(old_receipt.to_json())

    rotated = run(state, "rotate-key", "--reason", "scheduled", "--no-publish")
    assert rotated.returncode == 0, rotated.stderr
    audit = open_audit(state)
    assert audit.key.key_id != old_key_id
    new_receipt = issue_receipt(
        make_claims(uuid7(), pseudonym_of("resident-9")),
        sink=audit.log,
        key=audit.key,
        log_id=audit.settings.log_id,
        openings=audit.openings,
    )
    audit.close()
    (tmp_path / "new.json").write_text(new_receipt.to_json())
    assert run(state, "checkpoint", "--no-publish").returncode == 0

    done = run(
        state,
        "verify",
        "--receipt",
        str(tmp_path / "old.json"),
        "--receipt",
        str(tmp_path / "new.json"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 receipt(s) verified" in done.stdout
    pem = (state / "audit" / "operator-public.pem").read_text()
    assert pem.count("BEGIN PUBLIC KEY") == 2
    entries = (state / "audit" / "log.jsonl").read_text()
    assert '"type":"key_rotated"' in entries and old_key_id in entries
    assert (state / "secrets" / f"audit-ed25519.{old_key_id}.retired.pem").exists()

    # Only the old key at hand: checkpoints by the new key are not accepted.
    from stream_processor.audit.keys import Keyring

    only_old = tmp_path / "old.pem"
    only_old.write_text(
        next(
            k
            for k in Keyring.load(state / "audit" / "operator-public.pem").keys
            if k.key_id == old_key_id
        ).pem()
    )
    partial = run(state, "verify", "--public-key", str(only_old))
    assert partial.returncode == 1 and "wrong_key" in partial.stdout
