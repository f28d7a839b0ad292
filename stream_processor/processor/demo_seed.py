"""What the demo needs before its gates start: a policy for tenant ``demo`` and
consents for most simulated residents (the rest show ``no_consent`` discards)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edge_agent.pseudonym import (
    SiteSecret,
    consent_digest,
    load_site_secret,
    new_site_secret,
    pseudonym,
    write_site_secret,
)
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.policy.document import PolicyDocument
from stream_processor.policy.keys import history_key, policy_key
from stream_processor.policy.retention import PolicyVersion
from stream_processor.runtime.ledger_client import Auth, read_ledger, write_records
from stream_processor.runtime.settings import Topics

DEMO_POLICY: dict[str, Any] = {
    "tenant": "demo",
    "legal_ceiling": "3y",
    "purposes": {"access_control": {}},
    "camera_purposes": ["access_control"],
    "retention": {
        "face_match": {"access_control": "30d"},
        "key_card": {"access_control": "90d"},
        "pin": {"access_control": "90d"},
        "manual_open": {"access_control": "90d"},
        "unknown_face": {"access_control": 0},
    },
    "transport": {"raw_retention": "1d", "dlq_retention": "7d"},
}


def gate_site_secret(ident: DeviceIdentity, data_dir: Path) -> SiteSecret:
    """The demo's site office (``<state>/edge/../office``) makes each site's secret once,
    as ``facegate site secret create`` does, and gives each simulated gate its copy, as
    ``export-for-gate`` does."""
    office = data_dir.parent.parent / "office" / f"{ident.tenant}-{ident.site}.secret"
    if not office.exists():
        write_site_secret(new_site_secret(ident.tenant, ident.site), office)
    gate = data_dir / "site.secret"
    if not gate.exists():
        write_site_secret(load_site_secret(office, ident.tenant, ident.site), gate)
    return load_site_secret(gate, ident.tenant, ident.site)


def seed_demo(
    bootstrap: str,
    topics: Topics,
    devices: Iterable[tuple[DeviceIdentity, Path]],
    residents: int = 200,
    consenting: float = 0.8,
    auth: Auth | None = None,
) -> int:
    """Apply the demo policy (once) and grant consent to the first ``consenting``
    share of residents at each device's site, logged in with ``auth`` (the office's
    kafka-python login). Returns how many grants it wrote."""
    if policy_key("demo") not in read_ledger(bootstrap, topics.policies, auth=auth):
        doc = PolicyDocument.model_validate(DEMO_POLICY)
        record = PolicyVersion(
            tenant="demo", version=1, applied_at_ms=int(time.time() * 1000),
            applied_by="demo", comment="demo policy", document=doc.model_dump(mode="json"),
        ).encode()  # fmt: skip
        pairs: list[tuple[bytes, bytes | None]] = [
            (history_key("demo", 1), record),
            (policy_key("demo"), record),
        ]
        write_records(bootstrap, topics.policies, pairs, auth=auth)
    now = int(time.time() * 1000)
    grants: list[tuple[bytes, bytes | None]] = []
    for ident, data_dir in devices:
        secret = gate_site_secret(ident, data_dir)
        for i in range(int(residents * consenting)):
            subject = pseudonym(secret, f"resident-{i:05d}")
            r = ConsentRecord(
                tenant=ident.tenant, site=ident.site, subject=subject,
                purpose="access_control", status=ConsentStatus.GRANTED, given_by=GivenBy.SELF,
                evidence_ref=consent_digest(secret, f"demo-form-{i}"), at_ms=now,
            )  # fmt: skip
            grants.append((r.key, r.encode()))
    if grants:
        write_records(bootstrap, topics.consent, grants, auth=auth)
    return len(grants)
