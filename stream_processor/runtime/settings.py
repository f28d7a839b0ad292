"""Typed client settings shared by every cloud process (env prefix ``FACEGATE_``).

``BrokerSettings`` says where the brokers are and where state is kept; every
process (bridge, processor, erasure worker, web, CLI) reads the same
environment, so tests can run their own stack on free ports beside a running
demo. ``Topics`` names the Kafka topics and sizes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_processor.errors import ConfigError

#: Longest a Kafka time setting of ours may be (a century): far below Kafka's 64-bit ms,
#: so sums of them (retention + segment + check interval) cannot overflow.
MAX_TOPIC_MS = 100 * 365 * 86_400_000


class Topics(BaseSettings):
    """Kafka topic names and sizes."""

    model_config = SettingsConfigDict(
        env_prefix="FACEGATE_TOPIC_", extra="forbid", allow_inf_nan=False
    )

    raw: str = Field("facegate.events.raw", description="validated gate events, keyed by site")
    dlq: str = Field("facegate.events.dlq", description="rejected input with its reason")
    commands: str = Field(
        "facegate.edge.commands", description="cloud → edge commands, relayed to MQTT by the bridge"
    )
    acks: str = Field("facegate.edge.acks", description="edge → cloud command acknowledgements")
    device_status: str = Field(
        "facegate.devices.status",
        description="latest status per device (compacted; key tenant.site.gate.device)",
    )
    audit_checkpoints: str = Field(
        "facegate.audit.checkpoints",
        description="signed audit-log checkpoints, kept forever (a copy beyond the operator)",
    )
    audit_facts: str = Field(
        "facegate.audit.facts",
        description="audit facts from every process, before chaining (multi-host audit mode)",
    )
    audit_chain: str = Field(
        "facegate.audit.chain",
        description="the one audit chain, entry by entry, kept forever (multi-host audit mode)",
    )
    consent: str = Field(
        "facegate.consent", description="consent ledger (compacted; tenant/site/subject/purpose)"
    )
    erasure: str = Field(
        "facegate.erasure", description="erasure requests, keyed by request id (one partition)"
    )
    erasure_retention_ms: int = Field(
        7 * 24 * 3600 * 1000,
        ge=60_000,
        le=MAX_TOPIC_MS,
        description="how long erasure requests stay in Kafka (the worker keeps pending ones)",
    )
    policies: str = Field(
        "facegate.policies", description="policy versions (compacted; key tenant, tenant@version)"
    )
    ledger_segment_ms: int = Field(
        60_000,
        ge=1000,
        le=MAX_TOPIC_MS,
        description="segment roll time of the compacted ledger topics",
    )
    ledger_max_compaction_lag_ms: int = Field(
        60_000,
        ge=1000,
        le=MAX_TOPIC_MS,
        description="longest a superseded ledger record stays uncompacted",
    )
    ledger_delete_retention_ms: int = Field(
        60_000, ge=1000, le=MAX_TOPIC_MS, description="how long a ledger tombstone stays readable"
    )
    commands_retention_ms: int = Field(
        24 * 3600 * 1000,
        ge=60_000,
        le=MAX_TOPIC_MS,
        description="how long edge commands stay in Kafka",
    )
    raw_partitions: int = Field(6, ge=1, le=1024, description="partitions of the raw topic")
    raw_retention_ms: int = Field(
        7 * 24 * 3600 * 1000,
        ge=60_000,
        le=MAX_TOPIC_MS,
        description="how long raw events stay in Kafka",
    )
    dlq_retention_ms: int = Field(
        7 * 24 * 3600 * 1000,
        ge=60_000,
        le=MAX_TOPIC_MS,
        description="how long dead letters stay in Kafka",
    )
    segment_ms: int = Field(
        3600 * 1000,
        ge=10_000,
        le=MAX_TOPIC_MS,
        description="segment roll time; bounds how far past retention a record may live",
    )


class BrokerSettings(BaseSettings):
    """Where the brokers are reached and where this host keeps its state."""

    model_config = SettingsConfigDict(env_prefix="FACEGATE_", extra="ignore", allow_inf_nan=False)

    state_dir: Path = Field(
        Path(".facegate"), description="all state: data, logs, generated configs, secrets"
    )
    host: str = Field("127.0.0.1", description="address the local brokers listen on")
    mqtt_port: int = Field(
        1883, ge=1, le=65535, description="Mosquitto plain listener (loopback only, local dev)"
    )
    mqtt_tls_port: int = Field(
        8883, ge=0, le=65535, description="Mosquitto TLS listener for devices; 0 = none"
    )
    mqtt_tls_hostnames: list[str] = Field(
        default_factory=list,
        description="extra DNS names / IPs devices use to reach the broker (server cert SAN)",
    )
    kafka_port: int = Field(9092, ge=1, le=65535, description="Kafka client listener")
    kafka_bootstrap: str = Field(
        "",
        description="Kafka bootstrap servers ('host:port,host:port') of a remote cluster;"
        " empty = FACEGATE_HOST:FACEGATE_KAFKA_PORT (the local stack)",
    )
    kafka_nodes: int = Field(
        0,
        ge=0,
        le=1000,
        description="brokers in the Kafka cluster: from three up, the topics a process"
        " creates (the workers' changelogs, their group leader topic) get three replicas"
        " and min.insync.replicas=2; 0 = the local stack's node count (recorded in"
        " <state>/kafka/cluster.nodes by 'stack up'), else 1",
    )
    kafka_auth: bool = Field(
        True,
        description="Kafka clients log in with SASL/SCRAM-SHA-512, one principal per role"
        " (passwords in <state>/secrets/kafka-users.json), and the local stack's brokers"
        " require it and authorize by ACL. Unset: the mode the local stack's Kafka was"
        " formatted with (<state>/kafka/cluster.auth), else on",
    )

    @model_validator(mode="after")
    def _resolve(self) -> BrokerSettings:
        self.state_dir = self.state_dir.resolve()
        self.kafka_auth = resolve_kafka_auth(
            self.kafka_auth if "kafka_auth" in self.model_fields_set else None,
            recorded_kafka_auth(self.state_dir),
            self.state_dir,
        )
        if not self.kafka_nodes:
            self.kafka_nodes = recorded_kafka_nodes(self.state_dir) or 1
        if not self.kafka_bootstrap:
            self.kafka_bootstrap = f"{self.host}:{self.kafka_port}"
        return self


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class LogSettings(BaseSettings):
    """How much a process logs (``FACEGATE_LOG_LEVEL``)."""

    model_config = SettingsConfigDict(env_prefix="FACEGATE_", extra="ignore")

    log_level: LogLevel | None = Field(
        None,
        description="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case). Unset: WARNING for"
        " the Faust workers (processor, erasure), INFO for the bridge, the audit processes"
        " and the other commands. No level logs a pseudonym, an id number or a name",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    def level(self, default: LogLevel) -> LogLevel:
        """The level set, else this process's ``default``."""
        return self.log_level or default


def kafka_nodes_file(state_dir: Path) -> Path:
    """Where ``facegate stack up`` records its cluster's node count (a voter set is fixed
    when a node is formatted, so the count belongs to the state dir)."""
    return state_dir / "kafka" / "cluster.nodes"


def recorded_kafka_nodes(state_dir: Path) -> int | None:
    """The node count of the local stack under ``state_dir``; None without one."""
    try:
        text = kafka_nodes_file(state_dir).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def kafka_auth_file(state_dir: Path) -> Path:
    """Where ``facegate stack up`` records whether it formatted Kafka with SCRAM users:
    a node formatted without them cannot start requiring logins."""
    return state_dir / "kafka" / "cluster.auth"


def recorded_kafka_auth(state_dir: Path) -> bool | None:
    """The auth mode the local stack's Kafka under ``state_dir`` was formatted with;
    None when no Kafka is formatted there (a removed data dir may be formatted anew
    either way). A format older than the record has SCRAM users exactly when
    ``stack up`` marked it so (``kafka/scram-users``)."""
    kafka = state_dir / "kafka"
    if not (kafka / "data" / "meta.properties").exists():
        return None
    try:
        text = kafka_auth_file(state_dir).read_text().strip()
    except OSError:
        text = ""
    if text in ("on", "off"):
        return text == "on"
    return (kafka / "scram-users").exists()


def resolve_kafka_auth(explicit: bool | None, recorded: bool | None, state_dir: Path) -> bool:
    """``FACEGATE_KAFKA_AUTH`` as set, else the recorded mode, else on. A setting that
    contradicts the recorded format is refused: clients and brokers would disagree."""
    if explicit is None:
        return True if recorded is None else recorded
    if recorded is not None and explicit != recorded:
        have = "true" if recorded else "false"
        raise ConfigError(
            f"FACEGATE_KAFKA_AUTH={str(explicit).lower()} contradicts the Kafka under"
            f" {state_dir}, formatted with auth {'on' if recorded else 'off'}: unset"
            f" FACEGATE_KAFKA_AUTH or set it {have}, or use a new FACEGATE_STATE_DIR"
        )
    return explicit
