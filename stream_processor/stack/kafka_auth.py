"""Broker side of Kafka authentication: SASL listeners, the authorizer, the super users,
the SCRAM users made at storage format, and the ACLs of every role.

Clients log in with SCRAM-SHA-512 on the client listener. The controller listener
uses SASL/PLAIN with the broker's own user (KRaft controllers cannot check SCRAM:
the credentials live in the metadata they serve), so no anonymous connection is
trusted anywhere. ``with_auth`` rewrites one node's generated properties, so any
number of nodes gets the same treatment.
"""

from __future__ import annotations

from stream_processor.errors import BrokerError
from stream_processor.runtime.kafka_acls import Grant, acl_plan
from stream_processor.runtime.kafka_auth import (
    MECHANISM,
    SUPER_ROLES,
    Role,
    client_config,
    ensure_passwords,
)
from stream_processor.runtime.settings import BrokerSettings, Topics

#: SCRAM iterations of the users made at start (Kafka's minimum and default is 4096).
ITERATIONS = 8192

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_REPLACED = (
    "listeners=",
    "advertised.listeners=",
    "inter.broker.listener.name=",
    "listener.security.protocol.map=",
)


def _jaas(module: str, user: str, secret: str, extra: str = "") -> str:
    return f'{module} required username="{user}" password="{secret}"{extra};'


def with_auth(lines: list[str], passwords: dict[Role, str]) -> list[str]:
    """``lines`` (one node's server.properties) with SASL on every listener and ACLs on."""
    broker, secret = Role.BROKER.user, passwords[Role.BROKER]
    out: list[str] = []
    for line in lines:
        if line.startswith(("listeners=", "advertised.listeners=")):
            line = line.replace("PLAINTEXT://", "SASL_PLAINTEXT://")
        elif line.startswith(_REPLACED[2:]):
            continue
        out.append(line)
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    return [
        *out,
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        f"sasl.enabled.mechanisms={MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "listener.name.controller.plain.sasl.jaas.config="
        + _jaas(plain, broker, secret, f' user_{broker}="{secret}"'),
        f"listener.name.sasl_plaintext.{MECHANISM.lower()}.sasl.jaas.config="
        + _jaas(scram, broker, secret),
        f"authorizer.class.name={AUTHORIZER}",
        "allow.everyone.if.no.acl.found=false",
        "super.users=" + ";".join(f"User:{r.user}" for r in SUPER_ROLES),
    ]


def scram_format_args(passwords: dict[Role, str]) -> list[str]:
    """``StorageTool format`` arguments that create every role's SCRAM user."""
    args: list[str] = []
    for role, secret in passwords.items():
        args += ["--add-scram", f"{MECHANISM}=[name={role.user},password={secret}]"]
    return args


def stack_acl_plan(topics: Topics) -> list[Grant]:
    """The ACLs of this host's workers, named by their app ids as configured here."""
    from stream_processor.bridge.settings import BridgeSettings
    from stream_processor.erasure.settings import ErasureSettings
    from stream_processor.processor.settings import ProcessorSettings

    processor = ProcessorSettings().app_id
    erasure = ErasureSettings().app_id or f"{processor}-erasure"
    return acl_plan(topics, processor, erasure, BridgeSettings().share_group)


def ensure_scram_users(settings: BrokerSettings, timeout_s: float = 30.0) -> int:
    """Give every client role its SCRAM credential from the users file, as the admin.

    Upserting is idempotent, and it gives a role added after the storage was formatted
    (only then are users made without a broker running) its login. The brokers' own
    user stays as formatted: it is what they log in to each other with."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin._scram import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialAlteration,
        UserScramCredentialUpsertion,
    )

    passwords = ensure_passwords(settings.state_dir)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, ITERATIONS)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(role.user, info, secret.encode())
        for role, secret in passwords.items()
        if role is not Role.BROKER
    ]
    admin = AdminClient(client_config(Role.ADMIN, settings, "confluent"))
    for user, future in admin.alter_user_scram_credentials(upserts).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerError(f"Kafka refused the SCRAM user {user}: {exc}") from exc
    return len(upserts)
