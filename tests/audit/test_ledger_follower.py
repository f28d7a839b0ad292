"""Consent changes and policy versions reach the audit log from their topics (real Kafka)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from stream_processor.audit.log import FileAuditLog
from stream_processor.audit.openings import OpeningStore
from stream_processor.audit.settings import AuditPaths
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy, consent_key
from stream_processor.policy.keys import history_key, policy_key
from stream_processor.runtime.kafka_auth import Role
from tests.conftest import FACEGATE, StackHandle, wait_for
from tests.support.audit import pseudonym_of
from tests.support.kafka import login_kwargs, private_host, revoke_private
from tests.support.web import policy_version

ALICE = pseudonym_of("resident-alice")
KID = pseudonym_of("resident-kid")
T0 = 1_790_000_000_000


def consent(subject: str, status: ConsentStatus, at: int, **kw: object) -> tuple[bytes, bytes]:
    rec = ConsentRecord(
        tenant="acme",
        site="north",
        subject=subject,
        purpose="access_control",
        status=status,
        given_by=kw.pop("given_by", GivenBy.SELF),
        at_ms=T0 + at,  # type: ignore[arg-type]
        evidence_ref="form-1" if status is ConsentStatus.GRANTED else None,
        **kw,  # type: ignore[arg-type]
    )
    return rec.key, rec.encode()


@pytest.mark.component
def test_follower_writes_consent_and_policy_entries_once(
    running_stack: StackHandle, tmp_path: Path, tag: str, request: pytest.FixtureRequest
) -> None:
    from stream_processor.runtime.ledger_client import write_records
    from stream_processor.runtime.settings import Topics
    from stream_processor.runtime.topics import ensure_topics, topic_specs

    topics = Topics(consent=f"t.{tag}.consent", policies=f"t.{tag}.policies")
    bootstrap = running_stack.settings().kafka_bootstrap
    admin = login_kwargs(running_stack)
    ensure_topics(
        bootstrap,
        [s for s in topic_specs(topics) if s.name in (topics.consent, topics.policies)],
        1,
        admin,
    )
    write_records(
        bootstrap,
        topics.consent,
        [
            consent(ALICE, ConsentStatus.GRANTED, 1),
            consent(KID, ConsentStatus.GRANTED, 2, given_by=GivenBy.GUARDIAN, minor=True),
            consent(ALICE, ConsentStatus.WITHDRAWN, 3),
            (consent_key("acme", "north", KID, "access_control"), None),  # erased
            (b"_heartbeat/x", b"{}"),
        ],
        auth=admin,
    )
    write_records(
        bootstrap,
        topics.policies,
        [
            (history_key("acme", 1), policy_version("30d", 1)),
            (policy_key("acme"), policy_version("30d", 1)),
        ],
        auth=admin,
    )

    state = tmp_path / "state"
    # The follower is a host of its own (its state dir): it logs in as the audit role.
    grants = private_host(running_stack, state, topics, Role.AUDIT)
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    env = {
        **os.environ,
        **running_stack.env,
        "FACEGATE_STATE_DIR": str(state),
        "FACEGATE_TOPIC_CONSENT": topics.consent,
        "FACEGATE_TOPIC_POLICIES": topics.policies,
    }
    paths = AuditPaths.of(state)

    def entries() -> list[dict[str, object]]:
        if not paths.log.exists():
            return []
        return [json.loads(line) for line in paths.log.read_text().splitlines()]

    def run_until(count: int) -> None:
        log = open(tmp_path / "follow.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [FACEGATE, "audit", "follow"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: len(entries()) >= count, 60, f"{count} audit entries")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            log.close()

    run_until(5)
    got = entries()
    assert [(e["type"], e["body"].get("action") or e["body"].get("version")) for e in got] == [
        ("consent_changed", "granted"),
        ("consent_changed", "granted"),
        ("consent_changed", "withdrawn"),
        ("consent_changed", "record_removed"),
        ("policy_version", 1),
    ]
    assert got[1]["body"]["minor"] is True and got[1]["body"]["by_guardian"] is True
    text = paths.log.read_text()
    assert ALICE not in text and KID not in text and "ps1_" not in text

    # The operator can still find Alice's entries (subject access) through the openings.
    openings = OpeningStore(paths.openings)
    assert [o.seq for o in openings.for_subject(ALICE)] == [0, 2]
    openings.close()

    # Restarted: continues where it stopped, nothing logged twice.
    write_records(
        bootstrap, topics.consent, [consent(ALICE, ConsentStatus.GRANTED, 9)], auth=admin
    )
    run_until(6)
    assert len(entries()) == 6
    assert entries()[5]["body"]["given_at_ms"] == T0 + 9
    assert list(FileAuditLog(paths.log).entries())[-1].seq == 5
    verified = subprocess.run(
        [FACEGATE, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120
    )
    assert verified.returncode == 0, verified.stdout
