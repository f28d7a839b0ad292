"""The audit log holds no pseudonym or resident id in the clear, and refuses them."""

from __future__ import annotations

import pytest

from stream_processor.audit import record
from stream_processor.audit.commitment import commit, opens
from stream_processor.audit.entries import EntryType
from stream_processor.audit.errors import IdentifierInAudit
from stream_processor.rights.receipts import issue_receipt
from tests.support.audit import AuditRig, fill_log, make_claims, pseudonym_of

pytestmark = pytest.mark.unit

RESIDENTS = [f"resident-{i:05d}" for i in range(5)]


def test_log_and_checkpoints_hold_no_identifier(audit_rig: AuditRig, request_id: str) -> None:
    subjects = [pseudonym_of(r) for r in RESIDENTS]
    fill_log(audit_rig, subjects, rounds=2)
    record.erasure_requested(
        audit_rig.log,
        request_id=request_id,
        tenant="acme",
        site="north",
        subject=subjects[0],
        purposes=["access_control"],
        channel="office",
    )
    issue_receipt(
        make_claims(request_id, subjects[0]),
        sink=audit_rig.log,
        key=audit_rig.key,
        log_id="test-log",
        openings=audit_rig.openings,
    )
    audit_rig.checkpointer.checkpoint()
    published = audit_rig.paths.log.read_bytes() + audit_rig.paths.checkpoints.read_bytes()
    text = published.decode()
    for resident, subject in zip(RESIDENTS, subjects, strict=True):
        assert resident not in text
        assert subject not in text
        assert subject.removeprefix("ps1_") not in text
    assert "ps1_" not in text
    # Each mention of a subject is a distinct commitment: entries are unlinkable.
    commitments = [e.subject for e in audit_rig.log.entries() if e.subject]
    assert len(commitments) == len(set(commitments)) == 2 * 5 + 2


@pytest.mark.parametrize(
    "body",
    [
        {"note": pseudonym_of("x")},
        {"nested": [{"who": "erase " + pseudonym_of("y")}]},
        {pseudonym_of("z"): 1},
    ],
)
def test_pseudonym_in_body_is_refused(audit_rig: AuditRig, body: dict[str, object]) -> None:
    with pytest.raises(IdentifierInAudit):
        audit_rig.log.append(EntryType.POLICY_VERSION, tenant="acme", site=None, body=body)
    assert audit_rig.paths.log.read_bytes() == b""


def test_subject_must_be_a_pseudonym(audit_rig: AuditRig) -> None:
    with pytest.raises(IdentifierInAudit):
        audit_rig.log.append(
            EntryType.CONSENT_CHANGED, tenant="acme", site="n", body={}, subject="resident-1"
        )


def test_commitment_opens_only_with_its_salt() -> None:
    subject = pseudonym_of("r")
    salt = "ab" * 32
    c = commit(subject, salt)
    assert opens(c, subject, salt)
    assert not opens(c, pseudonym_of("other"), salt)
    assert not opens(c, subject, "cd" * 32)
    assert not opens(c, subject, "not-hex")
    assert commit(subject, "cd" * 32) != c


def test_published_schemas_match_the_code() -> None:
    from stream_processor.rights.schemas import render, schemas
    from tests.conftest import REPO

    for name, schema in schemas().items():
        committed = (REPO / "docs" / "schema" / name).read_text(encoding="utf-8")
        assert committed == render(schema), (
            f"docs/schema/{name} is stale: facegate audit export-schema"
        )


def test_sweep_report_becomes_one_entry_per_site(audit_rig: AuditRig) -> None:
    appended = record.retention_sweeps(
        audit_rig.log,
        deleted={
            ("acme", "north", "face_match"): 40,
            ("acme", "north", "key_card"): 2,
            ("acme", "south", "face_match"): 0,
            ("beta", "east", "pin"): 5,
        },
        swept_at_ms=1_790_000_000_000,
        policy_versions={"acme": 3},
    )
    got = [(a.entry.tenant, a.entry.site, a.entry.body) for a in appended]
    assert got == [
        (
            "acme",
            "north",
            {
                "deleted": {"face_match": 40, "key_card": 2},
                "deleted_total": 42,
                "cutoff_ms": 1_790_000_000_000,
                "policy_version": 3,
            },
        ),
        (
            "beta",
            "east",
            {
                "deleted": {"pin": 5},
                "deleted_total": 5,
                "cutoff_ms": 1_790_000_000_000,
                "policy_version": None,
            },
        ),
    ]
