"""Settings of the web app (env prefix ``FACEGATE_WEB_``)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FACEGATE_WEB_", extra="forbid", allow_inf_nan=False
    )

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=1, le=65535, description="port to listen on")
    public_url: str = Field(
        "http://127.0.0.1:8080",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="the URL residents reach this app at; printed into the QR codes",
    )
    cameras_path: Path | None = Field(
        None, description="camera registry YAML; default <state>/config/cameras.yaml"
    )
    retention_source: Literal["kafka", "file"] = Field(
        "kafka",
        description="where notices read retention: the policy in force on the policies "
        "topic (kafka), or policy YAML files (file, see retention_path)",
    )
    retention_path: Path | None = Field(
        None,
        description="policy YAML file or folder the notices read retention from; "
        "default <state>/config/policies",
    )

    publish_audit: bool = Field(
        True,
        description="serve the audit log, checkpoints and public key under /audit/ "
        "(they hold no identifiers; publishing them is what makes receipts checkable)",
    )

    keycard_contact_retention_days: float = Field(
        30.0,
        gt=0,
        le=3650,
        description="unit and contact of a closed key-card request are forgotten after this",
    )

    device_offline_after_s: float = Field(
        30.0,
        gt=0,
        le=7 * 86_400,
        description="a device with no status for this long shows as offline",
    )

    device_unreachable_after_s: float = Field(
        600.0,
        gt=0,
        le=30 * 86_400,
        description="a device with no status for this long is unreachable: an alarm on the"
        " console and in facegate_web_devices_unreachable",
    )

    withdrawal_overdue_after_s: float = Field(
        600.0,
        gt=0,
        le=30 * 86_400,
        description="a consent withdrawal a gate has not acknowledged this long after it was "
        "made is overdue on the console (the erasure worker's alarm bound, "
        "FACEGATE_ERASURE_WITHDRAWAL_ALARM_AFTER_S, should match)",
    )

    erasure_sla_days: float = Field(
        30.0,
        gt=0,
        le=365,
        description="an erasure pending longer than this is overdue on the dashboard",
    )
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="networks of reverse proxies whose X-Forwarded-For names the client "
        '(rate limits count that address); a JSON list, e.g. ["10.0.0.5/32"]; empty: the '
        "peer address is the client, and the header is ignored",
    )
    tls: bool = Field(
        False,
        description="serve HTTPS: a certificate from the project CA (<state>/secrets/tls/web.*) "
        "for the public_url's host and the listen address, unless tls_cert_path is set",
    )
    tls_cert_path: Path | None = Field(
        None, description="PEM certificate (chain) to serve instead of the project CA's"
    )
    tls_key_path: Path | None = Field(None, description="PEM private key of tls_cert_path")

    compliance_path: Path | None = Field(
        None,
        description="compliance.yaml: impact assessments (PIA) per site; "
        "default <state>/config/compliance.yaml",
    )

    @model_validator(mode="after")
    def _cert_with_key(self) -> WebSettings:
        if (self.tls_cert_path is None) != (self.tls_key_path is None):
            raise ValueError("tls_cert_path and tls_key_path go together")
        return self

    def compliance(self, state_dir: Path) -> Path:
        return self.compliance_path or state_dir / "config" / "compliance.yaml"

    def cameras(self, state_dir: Path) -> Path:
        return self.cameras_path or state_dir / "config" / "cameras.yaml"

    def retention(self, state_dir: Path) -> Path:
        return self.retention_path or state_dir / "config" / "policies"
