"""The ACL plan follows the names an operator configures (pure): a bridge deployment's
share group names its commands group, and `facegate status` reads the lag of a
processor whose app id is not facegate-prefixed; neither gets more than that."""

from __future__ import annotations

from stream_processor.runtime.kafka_acls import acl_plan, permits
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics

T = Topics()


def test_a_bridge_with_its_own_share_group_reads_commands_in_that_group_only() -> None:
    plan = acl_plan(T, "facegate-processor", "facegate-erasure", bridge_group="gates-east")
    assert permits(plan, Role.BRIDGE, "READ", "group", "gates-east-commands")
    assert permits(plan, Role.BRIDGE, "READ", "topic", T.commands)
    assert not permits(plan, Role.BRIDGE, "READ", "group", "facegate-bridge-commands")
    assert not permits(plan, Role.BRIDGE, "READ", "group", "facegate-processor.raw")
    assert not permits(plan, Role.BRIDGE, "WRITE", "topic", T.consent)
    # facegate status tells whether bridges run by that group's members.
    assert permits(plan, Role.STATUS, "DESCRIBE", "group", "gates-east-commands")
    assert not permits(plan, Role.STATUS, "READ", "group", "gates-east-commands")


def test_status_describes_the_processor_group_of_any_app_id_and_reads_nothing() -> None:
    plan = acl_plan(T, "acme-proc", "acme-proc-erasure")
    assert permits(plan, Role.STATUS, "DESCRIBE", "group", "acme-proc.raw")
    assert not permits(plan, Role.STATUS, "READ", "group", "acme-proc.raw")
    assert not permits(plan, Role.STATUS, "READ", "topic", T.raw)
    assert not permits(plan, Role.STATUS, "WRITE", "topic", T.consent)
