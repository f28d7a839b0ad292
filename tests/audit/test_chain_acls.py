"""Who may touch the multi-host audit topics (the role plan, pure): every role that
appends writes facts and reads the chain; only the audit writer writes the chain."""

from __future__ import annotations

from stream_processor.runtime.kafka_acls import acl_plan, permits
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics

T = Topics()
PLAN = acl_plan(T, "facegate-processor", "facegate-processor-erasure")
APPENDERS = (Role.OFFICE, Role.WEB, Role.PROCESSOR, Role.ERASURE, Role.AUDIT)


def test_every_appending_role_publishes_facts_and_reads_the_chain() -> None:
    for role in APPENDERS:
        assert permits(PLAN, role, "WRITE", "topic", T.audit_facts), role
        assert permits(PLAN, role, "READ", "topic", T.audit_chain), role


def test_only_the_audit_writer_writes_the_chain_or_reads_the_facts() -> None:
    writers = {r for r in Role if permits(PLAN, r, "WRITE", "topic", T.audit_chain)}
    readers = {r for r in Role if permits(PLAN, r, "READ", "topic", T.audit_facts)}
    assert writers == readers == {Role.AUDIT}
    tx = {r for r in Role if permits(PLAN, r, "WRITE", "transactional_id", "facegate-audit-writer")}
    assert tx == {Role.AUDIT}
    assert permits(PLAN, Role.AUDIT, "READ", "group", "facegate-audit-writer")


def test_gates_and_read_only_views_cannot_forge_audit_facts() -> None:
    for role in (Role.BRIDGE, Role.STATUS):
        assert not permits(PLAN, role, "WRITE", "topic", T.audit_facts)
        assert not permits(PLAN, role, "WRITE", "topic", T.audit_chain)
