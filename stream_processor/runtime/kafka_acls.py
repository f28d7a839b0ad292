"""Which role may do what on which Kafka resource (pure), and applying it as ACLs.

Least privilege per role: only the bridge writes raw events and dead letters
from gates; the office (CLI and web app) writes the ledgers, and besides it only
the erasure worker writes the consent and erasure ledgers (an erasure withdraws
the subject's consent and tombstones its records) and the policies ledger (its
compaction heartbeat: ``erasure/ledger_heartbeat.py``); workers
read raw and the ledgers and write commands, dead letters and their own (app-id
prefixed) changelog topics and groups. No one
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

Resource = Literal["topic", "group", "cluster", "transactional_id"]
Operation = Literal[
    "READ", "WRITE", "DESCRIBE", "CREATE", "ALTER", "DELETE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS",
    "ALL",
]  # fmt: skip


@dataclass(frozen=True)
class Grant:
    role: Role
    operation: Operation
    resource: Resource
    name: str
    prefixed: bool = False
    #: A DENY ACL: Kafka applies it over any ALLOW, so it carves one app's names out of
    #: another app's prefix.
    deny: bool = False


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


def _own_prefixes(apps: dict[Role, str]) -> list[Grant]:
    """A worker's prefix grants cover every name that starts with its app id, so an app
    id that starts with another's (the erasure worker's default, ``<processor>-erasure``)
    would hand the other worker its changelogs and groups: deny those explicitly."""
    denied: list[Grant] = []
    for role, app in apps.items():
        for other_role, other in apps.items():
            if other_role != role and other.startswith(app):
                denied += [Grant(role, "ALL", kind, other, prefixed=True, deny=True)
                           for kind in ("topic", "group")]  # fmt: skip
    return denied


def _ledger_writer(role: Role, t: Topics, group_prefix: str) -> list[Grant]:
    """The office CLI and the web app: write consent, erasure and policies (and commands
    for key cards), read what their views show, tune raw/DLQ retention on a policy."""
    ledgers = [t.consent, t.erasure, t.policies]
    grants = _topics(role, ("WRITE", "DESCRIBE"), [*ledgers, t.commands])
    reads = [*ledgers, t.dlq, t.acks, t.device_status, t.audit_checkpoints]
    grants += _reader(role, reads, group_prefix)
    # Applying a policy tunes raw and dead-letter retention to the strictest one in force.
    tuning: tuple[Operation, ...] = ("DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS")
    return grants + _topics(role, tuning, [t.raw, t.dlq])


def acl_plan(
    t: Topics, processor_app: str, erasure_app: str, bridge_group: str = "facegate-bridge"
) -> list[Grant]:
    """Every grant of every role (``processor_app``/``erasure_app``: the faust app ids;
    ``bridge_group``: the bridge's share group, which names its commands group)."""
    ledgers = [t.consent, t.erasure, t.policies]
    both: tuple[Operation, ...] = ("WRITE", "DESCRIBE")
    bridge = _topics(Role.BRIDGE, both, [t.raw, t.dlq, t.acks, t.device_status])
    bridge += _reader(Role.BRIDGE, [t.commands], bridge_group)
    office = _ledger_writer(Role.OFFICE, t, "facegate-cli")
    # The web app's live views dead-letter what they cannot read.
    web = _ledger_writer(Role.WEB, t, "facegate-web") + _topics(Role.WEB, both, [t.dlq])
    processor = _topics(Role.PROCESSOR, both, [t.dlq, t.commands])
    processor += _reader(Role.PROCESSOR, [t.raw, *ledgers], processor_app) + _app(
        Role.PROCESSOR, processor_app
    )
    # The erasure worker publishes its audit checkpoints, follows the processor's consent
    # table through its changelog, and reads the retention of every topic that may name
    # the subject for the receipt.
    # It also writes the consent ledger: an erasure withdraws the subject's consent and
    # tombstones every consent record naming them (Kafka cannot narrow that to the
    # subject's keys; the processor, which never needs it, gets no such grant).
    # And it writes a heartbeat to consent and policies so their segments roll and the
    # bound its receipts state holds (Kafka cannot narrow this to heartbeat keys).
    changelog = f"{processor_app}-consent-changelog"
    written = [t.dlq, t.commands, t.erasure, t.consent, t.policies, t.audit_checkpoints]
    erasure = _topics(Role.ERASURE, both, written)
    followed = [t.erasure, t.consent, t.acks, t.device_status, changelog]
    erasure += _reader(Role.ERASURE, followed, erasure_app) + _app(Role.ERASURE, erasure_app)
    named = [t.raw, t.dlq, t.commands, t.acks, t.erasure, t.consent, changelog]
    erasure += _topics(Role.ERASURE, ("DESCRIBE", "DESCRIBE_CONFIGS"), named)
    apart = _own_prefixes({Role.PROCESSOR: processor_app, Role.ERASURE: erasure_app})
    audit = _topics(Role.AUDIT, both, [t.audit_checkpoints, t.dlq])
    audit += _reader(Role.AUDIT, [t.audit_checkpoints, *ledgers, t.acks], "facegate-audit")
    chain = _audit_chain(t)
    # facegate status: end offsets of raw and dead letters, members and lag of the groups,
    # and the replicas, in-sync replicas and min.insync.replicas of every pipeline topic
    # (the workers' own included): it only looks.
    looks: tuple[Operation, ...] = ("DESCRIBE", "DESCRIBE_CONFIGS")
    pipeline = sorted({v for v in t.model_dump().values() if isinstance(v, str)})
    status = _topics(Role.STATUS, looks, pipeline)
    status += [Grant(Role.STATUS, op, "topic", app, prefixed=True)
               for app in (processor_app, erasure_app) for op in looks]  # fmt: skip
    status += [Grant(Role.STATUS, "DESCRIBE", "group", "facegate", prefixed=True)]
    # Its lag and bridges lines read the processor's and the bridges' groups, named by
    # the app id and the share group, which may be any names.
    status += [Grant(Role.STATUS, "DESCRIBE", "group", processor_app, prefixed=True)]
    status += [Grant(Role.STATUS, "DESCRIBE", "group", bridge_group, prefixed=True)]
    return [*bridge, *office, *web, *processor, *erasure, *apart, *audit, *chain, *status]


def _audit_chain(t: Topics) -> list[Grant]:
    """Multi-host audit: every role that appends publishes facts and reads the chain
    back; only the audit role (``facegate audit writer``) reads the facts (in its
    ``facegate-audit`` group) and writes the chain, under its transactional id."""
    appenders = (Role.OFFICE, Role.WEB, Role.PROCESSOR, Role.ERASURE, Role.AUDIT)
    grants = [
        g
        for r in appenders
        for g in _topics(r, ("WRITE", "DESCRIBE"), [t.audit_facts])
        + _topics(r, ("READ", "DESCRIBE"), [t.audit_chain])
    ]
    grants += [Grant(Role.AUDIT, "READ", "topic", t.audit_facts)]
    grants += [Grant(Role.AUDIT, "WRITE", "topic", t.audit_chain)]
    return grants + [
        Grant(Role.AUDIT, op, "transactional_id", "facegate-audit", prefixed=True)
        for op in ("WRITE", "DESCRIBE")
    ]


def permits(
    grants: list[Grant], role: Role, operation: Operation, resource: Resource, name: str
) -> bool:
    """Whether Kafka's authorizer lets ``role`` do ``operation`` on ``name`` under
    ``grants`` (pure): a matching DENY wins over any ALLOW, READ and WRITE imply
    DESCRIBE, ALL covers every operation, and nothing listed means refused."""
    implied = {operation, "ALL"} | ({"READ", "WRITE"} if operation == "DESCRIBE" else set())

    def matches(g: Grant) -> bool:
        named = name.startswith(g.name) if g.prefixed else name == g.name
        return g.role is role and g.resource == resource and named

    mine = [g for g in grants if matches(g)]
    if any(g.deny and g.operation in (operation, "ALL") for g in mine):
        return False
    return any(not g.deny and g.operation in implied for g in mine)


def to_acl(g: Grant) -> Any:
    """``g`` as a kafka-python ``ACL``."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    name = "kafka-cluster" if g.resource == "cluster" else g.name
    pattern = ACLResourcePatternType.PREFIXED if g.prefixed else ACLResourcePatternType.LITERAL
    return ACL(
        principal=f"User:{g.role.user}",
        host="*",
        operation=ACLOperation[g.operation],
        permission_type=ACLPermissionType.DENY if g.deny else ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(ResourceType[g.resource.upper()], name, pattern),
    )


def apply_acls(settings: BrokerSettings, grants: list[Grant], timeout_s: float = 30.0) -> int:
    """Create every grant as an ACL (as the admin role). Idempotent: Kafka keeps one
    copy of an ACL created twice. Returns how many were sent."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="facegate-stack",
            **kafka_python_auth(settings, Role.ADMIN),
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    try:
        acls = [to_acl(g) for g in grants]
        result = admin.create_acls(acls)
        failed = result.get("failed", [])
        if failed:
            raise BrokerError(f"Kafka refused {len(failed)} ACL(s), e.g. {failed[0]}")
        _wait_in_force(admin, acls, timeout_s)
    except KafkaError as exc:
        raise BrokerError(f"Kafka refused the ACLs: {exc}") from exc
    finally:
        admin.close()
    return len(grants)


def _wait_in_force(admin: Any, acls: list[Any], timeout_s: float) -> None:
    """CreateAcls answers once the controller has the records; a broker authorizes by
    them only after it applied that metadata, so a client started right away could be
    refused. Wait until the broker lists every one of ``acls`` (a count would be met at
    once on a cluster that already holds other ACLs)."""
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
        missing = [a for a in acls if a not in listed]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"Kafka lists {len(acls) - len(missing)} of {len(acls)} ACLs after {timeout_s}s"
            )
        time.sleep(0.2)
