"""The consent form's number never reaches the ledger, the CLI's output or the audit log:
only its HMAC under the office's identifier key (an unsalted hash of a short sequential
form number is brute-forced in seconds)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stream_processor.rights.office_key import DIGEST_PATTERN, evidence_digest, office_key
from tests.support.processor import BASE_POLICY, TENANT, Harness, subject

pytestmark = pytest.mark.component

FORM = "form-0001"


@pytest.mark.unit
def test_the_digest_is_keyed_and_domain_separated() -> None:
    key = bytes(range(32))
    d = evidence_digest(key, "acme", "north", FORM)
    assert DIGEST_PATTERN.match(d)
    assert d != evidence_digest(b"k" * 32, "acme", "north", FORM)
    assert d != evidence_digest(key, "acme", "south", FORM)
    assert d != evidence_digest(key, "acme", "north", "form-0002")
    # Not the unsalted hash an attacker would try.
    assert d[4:] not in hashlib.sha256(FORM.encode()).hexdigest()


def test_a_grant_keeps_only_the_keyed_digest(harness: Harness) -> None:
    h = harness
    h.apply_policy(BASE_POLICY)
    h.cli(
        "consent", "grant", "--tenant", TENANT, "--site", "site-1", "--subject", subject(1),
        "--purpose", "access_control", "--consent-ref", FORM,
    )  # fmt: skip
    records = [v for _, v in h.read_topic(h.topics.consent, 1.0) if v]
    assert records and all(FORM.encode() not in v for v in records)
    (grant,) = [json.loads(v) for v in records if json.loads(v)["subject"] == subject(1)]
    state = Path(h.p.env["FACEGATE_STATE_DIR"])
    key_file = state / "secrets" / "office-identifiers.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # The office, holding the paper form and its key, finds the record again.
    assert grant["evidence_ref"] == evidence_digest(office_key(state), TENANT, "site-1", FORM)
    shown = h.cli("consent", "show", "--tenant", TENANT, "--site", "site-1",
                  "--subject", subject(1))  # fmt: skip
    assert FORM not in shown.stdout and grant["evidence_ref"] in shown.stdout
