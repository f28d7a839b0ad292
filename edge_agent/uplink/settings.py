"""A device's identity and MQTT connection, from the file ``facegate devices add`` writes."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from edge_agent.errors import ConfigError
from edge_agent.uplink.resend import DEFAULT_CAP_S, DEFAULT_JITTER, DEFAULT_WINDOW
from edge_agent.wire.topics import DeviceIdentity


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="broker address")
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    username: str = Field(description="this device's MQTT account")
    password: SecretStr = Field(description="this device's MQTT password")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive")
    window: int = Field(100, ge=1, le=1000, description="QoS 1 messages in flight at once")
    ca_file: Path | None = Field(None, description="CA to verify the broker (TLS); None = plain")
    confirm_delivery: bool = Field(
        True,
        description="keep a sent event until the cloud confirms it durable in Kafka (the"
        " bridge's FACEGATE_BRIDGE_CONFIRM_DELIVERY must be on); off: delete on PUBACK,"
        " which a broker crash before its next save can lose",
    )
    confirm_timeout_s: float = Field(
        30.0,
        ge=0.5,
        le=86_400,
        description="a sent event not confirmed this long after its PUBACK is published"
        " again, with later ones, in order (duplicates are dropped by event id)",
    )
    resend_backoff_cap_s: float = Field(
        DEFAULT_CAP_S,
        ge=0.5,
        le=86_400,
        description="while nothing is confirmed the wait between re-send rounds doubles"
        " from confirm_timeout_s up to this (never below confirm_timeout_s); the first"
        " confirmation starts it over",
    )
    resend_jitter: float = Field(
        DEFAULT_JITTER,
        ge=0.0,
        lt=1.0,
        description="each wait between re-send rounds is shortened by a random part up"
        " to this fraction, so a site's gates that stalled together do not re-send in step",
    )
    resend_window: int = Field(
        DEFAULT_WINDOW,
        ge=1,
        le=1_000_000,
        description="most already-sent events published again per re-send round (from"
        " the oldest unconfirmed); later ones wait for a further round",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=0xFFFFFFFF,
        description="how long the broker keeps this device's session (and its queued "
        "commands) while the device is offline",
    )


class DeviceConnection(BaseModel):
    """What ``facegate devices add`` writes for a device: who it is and how to connect."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    site: str
    gate: str
    device: str
    mqtt: MqttSettings

    @property
    def identity(self) -> DeviceIdentity:
        return DeviceIdentity(self.tenant, self.site, self.gate, self.device)

    @classmethod
    def load(cls, path: Path) -> DeviceConnection:
        """Read the file; ``ConfigError`` says what is wrong with it."""
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"device connection file {path}: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"device connection file {path}: not JSON ({exc})") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"device connection file {path}: {problems}") from None
