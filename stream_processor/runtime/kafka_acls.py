"""Which role may do what on which Kafka resource (pure), and applying it as ACLs.

Least privilege per role: only the bridge writes raw events and dead letters
from gates; only the office (CLI and web app) writes the consent, erasure and
policy ledgers; workers read raw and the ledgers and write commands, dead
letters and their own (app-id prefixed) changelog topics and groups. No one
but the super users (the brokers and ``facegate stack up``) creates topics or
changes their configs, and with ``allow.everyone.if.no.acl.found=false`` what
is not listed here is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from stream_processor.errors import BrokerError
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics

Resource = Literal["topic", "group", "cluster"]
Operation = Literal[
    "READ", "WRITE", "DESCRIBE", "CREATE", "ALTER", "DELETE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"
]


@dataclass(frozen=True)
class Grant:
    role: Role
    operation: Operation
    resource: Resource
    name: str
    prefixed: bool = False


def _topics(role: Role, ops: tuple[Operation, ...], names: list[str]) -> list[Grant]:
    return [Grant(role, op, "topic", n) for n in names for op in ops]


def _app(role: Role, prefix: str) -> list[Grant]:
    """A faust app's own changelog/repartition topics and its consumer groups."""
    ops: tuple[Operation, ...] = ("READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS")
    return [Grant(role, op, "topic", prefix, prefixed=True) for op in ops] + [
        Grant(role, op, "group", prefix, prefixed=True) for op in ("READ", "DESCRIBE")
    ]


def _reader(role: Role, names: list[str], group_prefix: str) -> list[Grant]:
    return _topics(role, ("READ", "DESCRIBE"), names) + [
        Grant(role, op, "group", group_prefix, prefixed=True) for op in ("READ", "DESCRIBE")
    ]


def acl_plan(t: Topics, processor_app: str, erasure_app: str) -> list[Grant]:
    """Every grant of every role (``processor_app``/``erasure_app``: the faust app ids)."""
    ledgers = [t.consent, t.erasure, t.policies]
    both: tuple[Operation, ...] = ("WRITE", "DESCRIBE")
    bridge = _topics(Role.BRIDGE, both, [t.raw, t.dlq, t.acks, t.device_status])
    bridge += _reader(Role.BRIDGE, [t.commands], "facegate-bridge")
    office = _topics(Role.OFFICE, both, [*ledgers, t.commands])
    office_reads = [*ledgers, t.dlq, t.acks, t.device_status, t.audit_checkpoints]
    office += _reader(Role.OFFICE, office_reads, "facegate-cli")
    office += [Grant(Role.OFFICE, op, "group", "facegate-web", True) for op in ("READ", "DESCRIBE")]
    # Applying a policy tunes raw and dead-letter retention to the strictest one in force.
    tuning: tuple[Operation, ...] = ("DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS")
    office += _topics(Role.OFFICE, tuning, [t.raw, t.dlq])
    processor = _topics(Role.PROCESSOR, both, [t.dlq, t.commands])
    processor += _reader(Role.PROCESSOR, [t.raw, *ledgers], processor_app) + _app(
        Role.PROCESSOR, processor_app
    )
    # The erasure worker publishes its audit checkpoints, follows the processor's consent
    # table through its changelog, and reads the retention of every topic that may name
    # the subject for the receipt.
    changelog = f"{processor_app}-consent-changelog"
    erasure = _topics(Role.ERASURE, both, [t.dlq, t.commands, t.erasure, t.audit_checkpoints])
    followed = [t.erasure, t.consent, t.acks, t.device_status, changelog]
    erasure += _reader(Role.ERASURE, followed, erasure_app) + _app(Role.ERASURE, erasure_app)
    named = [t.raw, t.dlq, t.commands, t.acks, t.erasure, t.consent, changelog]
    erasure += _topics(Role.ERASURE, ("DESCRIBE", "DESCRIBE_CONFIGS"), named)
    audit = _topics(Role.AUDIT, both, [t.audit_checkpoints])
    audit += _reader(Role.AUDIT, [t.audit_checkpoints, *ledgers, t.acks], "facegate-audit")
    return [*bridge, *office, *processor, *erasure, *audit]


def apply_acls(settings: BrokerSettings, grants: list[Grant], timeout_s: float = 30.0) -> int:
    """Create every grant as an ALLOW ACL (as the admin role). Idempotent: Kafka keeps
    one copy of an ACL created twice. Returns how many were sent."""
    from kafka import KafkaAdminClient
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )
    from kafka.errors import KafkaError

    def acl(g: Grant) -> ACL:
        name = "kafka-cluster" if g.resource == "cluster" else g.name
        pattern = ACLResourcePatternType.PREFIXED if g.prefixed else ACLResourcePatternType.LITERAL
        return ACL(
            principal=f"User:{g.role.user}",
            host="*",
            operation=ACLOperation[g.operation],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(ResourceType[g.resource.upper()], name, pattern),
        )

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="facegate-stack",
            **kafka_python_auth(settings, Role.ADMIN),
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    try:
        result = admin.create_acls([acl(g) for g in grants])
        failed = result.get("failed", [])
        if failed:
            raise BrokerError(f"Kafka refused {len(failed)} ACL(s), e.g. {failed[0]}")
        _wait_in_force(admin, len(set(grants)), timeout_s)
    except KafkaError as exc:
        raise BrokerError(f"Kafka refused the ACLs: {exc}") from exc
    finally:
        admin.close()
    return len(grants)


def _wait_in_force(admin: Any, expected: int, timeout_s: float) -> None:
    """CreateAcls answers once the controller has the records; a broker authorizes by
    them only after it applied that metadata, so a client started right away could be
    refused. Wait until the broker lists them all."""
    import time

    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    every = ACLFilter(
        principal=None, host="*", operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while True:
        listed, _error = admin.describe_acls(every)
        if len(listed) >= expected:
            return
        if time.monotonic() > deadline:
            raise BrokerError(f"Kafka lists {len(listed)} of {expected} ACLs after {timeout_s}s")
        time.sleep(0.2)
