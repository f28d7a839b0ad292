"""Ledger keys: one definition of the policy history mark and of the internal keys
(heartbeats, read positions), read the same way by every consumer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.wire.topics import ID_PATTERN
from stream_processor.audit.entries import EntryType
from stream_processor.audit.follower import LedgerAuditor
from stream_processor.audit.log import Appended
from stream_processor.notices.policy_retention import PolicyTopicRetention
from stream_processor.policy.keys import (
    heartbeat_key,
    history_key,
    is_heartbeat,
    is_history,
    is_internal,
    policy_key,
    tenant_of,
)
from stream_processor.processor.ledger import read_consent, read_policy
from tests.support.audit import AuditRig
from tests.support.web import policy_version

pytestmark = pytest.mark.unit

tenants = st.from_regex(ID_PATTERN, fullmatch=True)
versions = st.integers(min_value=1, max_value=99_999_998)


@given(tenants, versions)
def test_history_and_current_keys_name_the_same_tenant(tenant: str, version: int) -> None:
    history, current = history_key(tenant, version), policy_key(tenant)
    assert tenant_of(history) == tenant_of(current) == tenant
    assert is_history(history) and not is_history(current)
    assert not is_internal(history) and not is_internal(current)
    # Zero-padded: history keys of one tenant sort by version.
    assert history_key(tenant, version) < history_key(tenant, version + 1)


@given(tenants, st.text(min_size=1, max_size=40))
def test_heartbeats_are_internal_and_never_a_tenant(tenant: str, writer: str) -> None:
    beat = heartbeat_key(writer)
    assert is_heartbeat(beat) and is_internal(beat)
    assert not is_heartbeat(policy_key(tenant)) and not is_internal(policy_key(tenant))


def test_every_ledger_reader_skips_a_heartbeat(audit_rig: AuditRig) -> None:
    beat, value = heartbeat_key("worker-1"), b"1790000000000"
    assert read_consent(beat, value) is None
    assert read_policy(beat, value) is None
    auditor = LedgerAuditor(audit_rig.log, "consent", "policies")
    before = audit_rig.lines()
    assert auditor.take("consent", 0, 0, beat, value) is None
    assert auditor.take("policies", 0, 0, beat, value) is None
    assert audit_rig.lines() == before
    source = PolicyTopicRetention("unused:1", "unused")
    source.apply(beat, policy_version("30d", 1))
    assert source.version(beat.decode()) is None


def test_the_policies_follower_takes_each_history_version_once(audit_rig: AuditRig) -> None:
    auditor = LedgerAuditor(audit_rig.log, "consent", "policies")
    v1 = policy_version("30d", 1)
    assert auditor.take("policies", 0, 0, policy_key("acme"), v1) is None  # in force: no entry
    appended = auditor.take("policies", 0, 1, history_key("acme", 1), v1)
    assert isinstance(appended, Appended)
    entry = appended.entry
    assert (entry.type, entry.tenant) == (EntryType.POLICY_VERSION, "acme")
    assert (entry.body["version"], entry.body["source"]) == (1, "policies/0/1")
    assert len(audit_rig.lines()) == 1
