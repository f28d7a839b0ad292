"""Typed settings of a bridge instance (env prefix ``FACEGATE_BRIDGE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_BRIDGE_", extra="forbid")

    instance: str = Field(
        "1", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="stable per instance: the MQTT client id"
    )
    share_group: str = Field(
        "facegate-bridge", description="MQTT shared-subscription group of all bridge instances"
    )
    max_inflight: int = Field(
        5000,
        ge=1,
        le=65_000,
        description="MQTT Receive Maximum: unacked deliveries the broker may send (back-pressure)",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=60, description="how long the broker keeps our session while we are away"
    )
    max_payload_bytes: int = Field(4096, ge=256, description="larger payloads are dead-lettered")
    linger_ms: int = Field(5, ge=0, le=1000, description="Kafka producer linger")
    batch_bytes: int = Field(1_048_576, ge=16_384, description="Kafka producer batch size")
    compression: str = Field(
        "none",
        pattern=r"^(none|lz4|zstd|snappy|gzip)$",
        description="Kafka producer compression (CPU for bandwidth)",
    )
    delivery_timeout_ms: int = Field(
        300_000,
        ge=10_000,
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
    relay_commands: bool = Field(
        True, description="relay facegate.edge.commands from Kafka to the sites' MQTT topics"
    )

    @property
    def client_id(self) -> str:
        return f"facegate-bridge-{self.instance}"
