"""The published format is enough: docs/verifier/verify_audit.py (no facegate code) agrees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream_processor.audit import record
from stream_processor.rights.receipts import issue_receipt
from tests.conftest import REPO
from tests.support.audit import SUBJECT, AuditRig, fill_log, make_claims, pseudonym_of, uuid7

pytestmark = pytest.mark.e2e

VERIFIER = REPO / "docs" / "verifier" / "verify_audit.py"


def run(rig: AuditRig, *extra: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-I",
            str(VERIFIER),
            str(rig.paths.log),
            str(rig.paths.checkpoints),
            str(rig.paths.public_key),
            *map(str, extra),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


def test_independent_verifier_agrees(audit_rig: AuditRig, tmp_path: Path) -> None:
    fill_log(audit_rig, [SUBJECT, pseudonym_of("other")], rounds=2)
    request_id = uuid7()
    record.erasure_requested(
        audit_rig.log,
        request_id=request_id,
        tenant="acme",
        site="north",
        subject=SUBJECT,
        purposes=["access_control"],
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
    path = tmp_path / "receipt.json"
    path.write_text(receipt.to_json())

    ok = run(audit_rig, path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout

    forged = receipt.model_copy(
        update={"claims": receipt.claims.model_copy(update={"completed_at_ms": 1})}
    )
    (tmp_path / "forged.json").write_text(forged.to_json())
    bad = run(audit_rig, tmp_path / "forged.json")
    assert bad.returncode == 1 and "receipt: bad signature" in bad.stdout

    lines = audit_rig.lines()
    lines[1] = lines[1].replace(b'"granted"', b'"withdrawn"')
    audit_rig.write_lines(lines)
    tampered = run(audit_rig)
    assert tampered.returncode == 1
    assert "line 2 (seq 1): content changed" in tampered.stdout


def test_verifier_uses_no_facegate_code() -> None:
    text = VERIFIER.read_text()
    assert "stream_processor" not in text and "edge_agent" not in text
