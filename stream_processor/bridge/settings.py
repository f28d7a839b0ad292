"""Typed settings of a bridge instance (env prefix ``FACEGATE_BRIDGE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edge_agent.wire.bounds import MAX_QUEUE_AGE_S
from edge_agent.wire.topics import ID_PATTERN, ROOT
from stream_processor.bridge.validate import Limits


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FACEGATE_BRIDGE_", extra="forbid", allow_inf_nan=False
    )

    instance: str = Field(
        "1", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="stable per instance: the MQTT client id"
    )
    share_group: str = Field(
        "facegate-bridge",
        description="names this bridge deployment: the Kafka group of the commands relay"
        " and, in 'shared' mode, the MQTT shared-subscription group",
    )
    subscription: Literal["exclusive", "shared"] = Field(
        "exclusive",
        description="'exclusive': this instance owns the devices in 'scope' (ordinary"
        " subscriptions; safe across Mosquitto restarts). 'shared': $share/<group>/ round"
        " robin over all instances; on Mosquitto 2.0.11 it loses in-flight messages"
        " across a broker restart (see docs/bridge.md)",
    )
    scope: list[str] = Field(
        default_factory=list,
        description="which devices this instance takes: 'tenant' or 'tenant/site' entries"
        " (JSON list in the env var); empty = all. Instances side by side must cover every"
        " tenant between them, or Mosquitto drops what no one subscribed to",
    )
    max_inflight: int = Field(
        5000,
        ge=1,
        le=65_000,
        description="MQTT Receive Maximum: unacked deliveries the broker may send (back-pressure)",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=2**32 - 1,  # MQTT's Session Expiry Interval is a four-byte integer
        description="how long the broker keeps our session while we are away",
    )
    max_payload_bytes: int = Field(
        4096,
        ge=256,
        le=1_000_000,  # one Kafka record, under the broker's default message.max.bytes
        description="larger payloads are dead-lettered",
    )
    max_clock_skew_s: int = Field(
        300,
        ge=0,
        le=86_400,
        description="an event whose occurred_at_ms is further ahead of the bridge's clock is"
        " dead-lettered as clock_skew (a gate must not date its events into the future)",
    )
    max_event_age_s: int = Field(
        MAX_QUEUE_AGE_S,
        ge=60,
        le=366 * 86_400,
        description="an event older than this on arrival is dead-lettered as clock_skew;"
        " default: the edge outbox's maximum age (wire.bounds.MAX_QUEUE_AGE_S)",
    )
    linger_ms: int = Field(
        50,
        ge=0,
        le=1000,
        description="Kafka producer linger. The idempotent producer sends one request per"
        " partition and keeps at most 5 in flight per broker; with its requests full and a"
        " batch past its linger, librdkafka's broker threads busy-loop until an ack comes"
        " back. At 10 ms that began once acks=all took >25 ms (two partitions per leader):"
        " on three nodes sharing two cores the spin took the followers' CPU, acks slowed"
        " further, live p99 went to seconds. 50 ms moves that point past 125 ms"
        " (docs/benchmarks.md, issue 15)",
    )
    batch_bytes: int = Field(
        1_048_576, ge=16_384, le=2**31 - 1, description="Kafka producer batch size"
    )
    compression: str = Field(
        "none",
        pattern=r"^(none|lz4|zstd|snappy|gzip)$",
        description="Kafka producer compression (CPU for bandwidth)",
    )
    delivery_timeout_ms: int = Field(
        300_000,
        ge=10_000,
        le=2**31 - 1,  # librdkafka's message.timeout.ms is a 32-bit int
        description="how long Kafka sends are retried before the bridge drops the MQTT"
        " connection so the broker redelivers (nothing is acknowledged meanwhile)",
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="HTTP port of /metrics and /healthz; 0 = off"
    )
    metrics_host: str = Field("127.0.0.1", description="address the metrics server binds")
    mqtt_host: str | None = Field(None, description="MQTT broker host; None = FACEGATE_HOST")
    mqtt_port: int | None = Field(
        None, ge=1, le=65535, description="MQTT broker port; None = FACEGATE_MQTT_PORT"
    )
    ca_file: Path | None = Field(
        None, description="CA that signed the broker's certificate: connect with TLS; None = plain"
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive")
    commands_replay_s: int = Field(
        120,
        ge=0,
        le=86_400,
        description="after each MQTT reconnect, relay again the commands of the last this"
        " many seconds: a broker that crashed lost what it accepted since its last save"
        " (autosave_interval 30 s), e.g. a withdrawal queued for an offline gate; a gate"
        " carries out a repeated command again (nothing left to remove) and acks it; 0 = off",
    )
    confirm_delivery: bool = Field(
        True,
        description="tell each device which of its events Kafka holds (its 'confirms'"
        " topic), so it keeps them until then; off only for devices with"
        " mqtt.confirm_delivery off (they delete on PUBACK)",
    )
    confirm_interval_ms: int = Field(
        200,
        ge=10,
        le=60_000,
        description="at most one confirmation round per this interval: each device gets one"
        " message per contiguous range of its events Kafka acknowledged meanwhile",
    )
    relay_commands: bool = Field(
        True, description="relay facegate.edge.commands from Kafka to the sites' MQTT topics"
    )

    @field_validator("scope")
    @classmethod
    def _scope_ids(cls, v: list[str]) -> list[str]:
        import re

        for entry in v:
            parts = entry.split("/")
            if len(parts) not in (1, 2) or not all(re.fullmatch(ID_PATTERN, x) for x in parts):
                raise ValueError(f"scope entry {entry!r} must be 'tenant' or 'tenant/site'")
        return v

    def filters(self) -> list[str]:
        """The MQTT subscriptions of this instance: device events, acks and statuses."""
        prefixes = []
        for entry in self.scope or ["+"]:
            tenant, _, site = entry.partition("/")
            prefixes.append(f"{ROOT}/{tenant}/{site or '+'}/+/+")
        plain = [f"{prefix}/{leaf}" for prefix in prefixes for leaf in ("events", "acks", "status")]
        if self.subscription == "shared":
            return [f"$share/{self.share_group}/{f}" for f in plain]
        return plain

    def limits(self) -> Limits:
        return Limits(
            self.max_payload_bytes, self.max_clock_skew_s * 1000, self.max_event_age_s * 1000
        )

    @property
    def client_id(self) -> str:
        return f"facegate-bridge-{self.instance}"
