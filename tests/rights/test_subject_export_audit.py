"""Subject access is audited and narrow: an export by resident id without a reason is
refused, every export writes an audit entry (who, why, case, scope; the subject only
as a commitment), and a per-person history goes only into the subject's own export."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from edge_agent.pseudonym import SiteSecret
from stream_processor.audit.commitment import opens
from stream_processor.audit.entries import AuditEntry, decode_entry
from stream_processor.audit.wiring import open_audit
from stream_processor.errors import InvalidInput
from stream_processor.rights.export_audit import (
    HISTORY_WITHHELD,
    ExportRequest,
    export_parts,
    export_reason,
    history_allowed,
)
from tests.conftest import FACEGATE

RESIDENT = "resident-31337"


def run(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FACEGATE, "subject", "export", "--tenant", "acme", "--site", "north", "--no-ledger",
         *args],
        env={**os.environ, "FACEGATE_STATE_DIR": str(state)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def log_lines(state: Path) -> list[bytes]:
    path = state / "audit" / "log.jsonl"
    return path.read_bytes().splitlines() if path.exists() else []


def exports(state: Path) -> list[AuditEntry]:
    return [e for e in map(decode_entry, log_lines(state)) if e.type == "subject_exported"]


@pytest.mark.unit
def test_the_rules() -> None:
    with pytest.raises(InvalidInput, match="needs --reason"):
        export_reason(None, "resident_id")
    assert export_reason(None, "pseudonym") == "access_request"
    assert history_allowed("access_request") and not history_allowed("complaint")
    assert "stored_events" not in export_parts(reason="complaint", with_store=True,
                                               with_ledger=True)  # fmt: skip
    with pytest.raises(InvalidInput, match="case reference"):
        ExportRequest(by="op", reason="complaint", case_ref="Zhang San's complaint",
                      named_by="resident_id", parts=())  # fmt: skip
    with pytest.raises(InvalidInput, match="reason must be one of"):
        ExportRequest(by="op", reason="curious", case_ref=None, named_by="pseudonym", parts=())


@pytest.mark.e2e
def test_an_export_by_resident_id_needs_a_reason_and_is_audited(tmp_path: Path) -> None:
    state = tmp_path / "state"
    secret = tmp_path / "site.secret"
    secret.write_text(SiteSecret("acme", "north", b"s" * 32).text())
    out = tmp_path / "export.json"
    by_id = ("--resident-id", RESIDENT, "--site-secret", str(secret), "--out", str(out))

    refused = run(state, *by_id)
    assert refused.returncode == 2, refused.stderr
    assert "needs --reason" in refused.stderr and "Traceback" not in refused.stderr
    assert not out.exists() and exports(state) == []

    done = run(state, *by_id, "--reason", "complaint", "--case-ref", "T-2026-17")
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    pseudonym = doc["subject"]
    # A complaint is not the subject's own request: no gate-by-gate history.
    assert doc["stored_events"] == [] and HISTORY_WITHHELD in doc["unavailable"]

    (entry,) = exports(state)
    assert entry.body["reason"] == "complaint" and entry.body["case_ref"] == "T-2026-17"
    assert entry.body["named_by"] == "resident_id" and entry.body["channel"] == "cli"
    assert entry.body["by"] and "stored_events" not in entry.body["scope"]
    assert (entry.tenant, entry.site) == ("acme", "north")
    # The subject only as a commitment: the log names neither the pseudonym nor the id.
    assert entry.subject is not None and entry.subject.startswith("c1_")
    for line in log_lines(state):
        assert pseudonym.encode() not in line and RESIDENT.encode() not in line
    audit = open_audit(state)
    try:
        (opening,) = [o for o in audit.openings.for_subject(pseudonym) if o.seq == entry.seq]
    finally:
        audit.close()
    assert opens(entry.subject, pseudonym, opening.salt)


@pytest.mark.e2e
def test_the_subjects_own_export_carries_the_history_and_shows_who_looked(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    secret = tmp_path / "site.secret"
    secret.write_text(SiteSecret("acme", "north", b"s" * 32).text())
    out = tmp_path / "export.json"
    first = run(state, "--resident-id", RESIDENT, "--site-secret", str(secret),
                "--reason", "legal_obligation", "--case-ref", "court-9", "--no-store")  # fmt: skip
    assert first.returncode == 0, first.stderr
    pseudonym = json.loads(first.stdout)["subject"]

    own = run(state, "--subject", pseudonym, "--out", str(out))
    assert own.returncode == 0, own.stderr
    doc = json.loads(out.read_text())
    assert not any(u.startswith("stored_events") for u in doc["unavailable"])
    looked = [(e["type"], e["body"]["reason"]) for e in doc["audit_entries"]]
    # The subject sees the earlier look at their data, and this export itself.
    assert looked == [("subject_exported", "legal_obligation"),
                      ("subject_exported", "access_request")]  # fmt: skip
    assert [e.body["named_by"] for e in exports(state)] == ["resident_id", "pseudonym"]
    assert "stored_events" in exports(state)[1].body["scope"]
