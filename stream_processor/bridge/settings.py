"""Typed settings of a bridge instance (env prefix ``FACEGATE_BRIDGE_``)."""

from __future__ import annotations

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
        2000,
        ge=1,
        le=65_000,
        description="MQTT Receive Maximum: unacked deliveries the broker may send (back-pressure)",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=60, description="how long the broker keeps our session while we are away"
    )
    max_payload_bytes: int = Field(4096, ge=256, description="larger payloads are dead-lettered")
    linger_ms: int = Field(5, ge=0, le=1000, description="Kafka producer linger")
    batch_bytes: int = Field(262_144, ge=16_384, description="Kafka producer batch size")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics port; 0 = off")

    @property
    def client_id(self) -> str:
        return f"facegate-bridge-{self.instance}"
