"""Kafka principals: one SCRAM-SHA-512 user per process role, and the client settings
each Kafka library needs to log in as that role.

The passwords live in ``<state>/secrets/kafka-users.json`` (0600), made by
``facegate stack up`` when ``FACEGATE_KAFKA_AUTH`` is on; every process of this
host reads its own role's entry from there. With auth off every builder returns
no settings, and the clients connect as before.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from stream_processor.errors import BrokerError, ConfigError
from stream_processor.runtime.layout import StateLayout, write_private
from stream_processor.runtime.settings import BrokerSettings

MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_PLAINTEXT"

#: The Kafka client libraries facegate uses; aiokafka takes kafka-python's names.
Library = Literal["kafka-python", "aiokafka", "confluent"]


class Role(StrEnum):
    """Who a Kafka client is; each is its own principal ``User:facegate-<role>``."""

    BROKER = "broker"  # the brokers themselves (inter-broker, controller): super user
    ADMIN = "admin"  # facegate stack up: topics, their configs, ACLs: super user
    BRIDGE = "bridge"
    PROCESSOR = "processor"
    ERASURE = "erasure"
    AUDIT = "audit"
    OFFICE = "office"  # the office's CLI commands (consent, policy, erasure, subject, keycard)
    WEB = "web"  # the web app: live views, forms that write the ledgers
    STATUS = "status"  # facegate status and tail: read-only views

    @property
    def user(self) -> str:
        return f"facegate-{self.value}"


SUPER_ROLES = (Role.BROKER, Role.ADMIN)


def users_path(state_dir: Path) -> Path:
    return StateLayout(state_dir).secrets / "kafka-users.json"


def ensure_passwords(state_dir: Path) -> dict[Role, str]:
    """Every role's password, made once (hex: safe inside JAAS and --add-scram)."""
    path = users_path(state_dir)
    known = _read(path) if path.exists() else {}
    missing = [r for r in Role if r not in known]
    if missing:
        known |= {r: secrets.token_hex(24) for r in missing}
        write_private(path, json.dumps({r.value: p for r, p in known.items()}, indent=1))
    return known


def _read(path: Path) -> dict[Role, str]:
    try:
        raw = json.loads(path.read_text())
        return {Role(k): str(v) for k, v in raw.items()}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the Kafka users file {path}: {exc}") from exc


def password(settings: BrokerSettings, role: Role) -> str:
    path = users_path(settings.state_dir)
    if not path.exists():
        raise ConfigError(
            f"FACEGATE_KAFKA_AUTH is on but {path} is missing: run 'facegate stack up' first"
        )
    try:
        return _read(path)[role]
    except KeyError:
        raise ConfigError(f"{path} has no password for the {role.value} role") from None


def client_config(
    role: Role, settings: BrokerSettings, library: Library = "kafka-python"
) -> dict[str, Any]:
    """Everything a Kafka client of ``role`` needs to connect: the bootstrap servers and,
    with auth on, its login. The one place client security settings are built, so no
    client can connect as someone else or forget to log in."""
    if library == "confluent":
        return {"bootstrap.servers": settings.kafka_bootstrap, **confluent_auth(settings, role)}
    return {"bootstrap_servers": settings.kafka_bootstrap, **kafka_python_auth(settings, role)}


def kafka_python_auth(settings: BrokerSettings, role: Role) -> dict[str, Any]:
    """The login part of ``client_config`` for kafka-python and aiokafka (same names)."""
    if not settings.kafka_auth:
        return {}
    return {
        "security_protocol": PROTOCOL,
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": role.user,
        "sasl_plain_password": password(settings, role),
    }


def confluent_auth(settings: BrokerSettings, role: Role) -> dict[str, str]:
    """The login part of ``client_config`` for librdkafka (confluent-kafka)."""
    if not settings.kafka_auth:
        return {}
    return {
        "security.protocol": PROTOCOL,
        "sasl.mechanisms": MECHANISM,
        "sasl.username": role.user,
        "sasl.password": password(settings, role),
    }


def login(settings: BrokerSettings, role: Role) -> tuple[str, str] | None:
    """(user, password) of ``role``, or None with auth off: for clients whose settings
    are built where their library may be imported (``faust.SASLCredentials``)."""
    if not settings.kafka_auth:
        return None
    return role.user, password(settings, role)


def check_login(bootstrap: str, auth: Mapping[str, Any], timeout_s: float = 10.0) -> None:
    """Raise ``BrokerError`` unless a bootstrap server accepts the kafka-python login
    ``auth`` within ``timeout_s`` (nothing to check without a login in it).

    kafka-python retries a refused SASL login forever and its metadata calls wait
    without a deadline, so a command with a wrong password would hang instead of
    saying so: short-lived clients check the login first."""
    if "sasl_plain_username" not in auth:
        return
    import socket

    from kafka.conn import BrokerConnection

    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        conn = BrokerConnection(host, int(port), socket.AF_UNSPEC, **auth)
        try:
            if conn.connect_blocking(timeout=timeout_s):
                return
        finally:
            conn.close()
    raise BrokerError(
        f"Kafka at {bootstrap} did not accept the login of {auth.get('sasl_plain_username')}"
        " (a wrong password, a cluster without that user, or no broker running)"
    )
