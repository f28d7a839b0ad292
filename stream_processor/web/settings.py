"""Settings of the web app (env prefix ``FACEGATE_WEB_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_WEB_", extra="forbid")

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
        description="unit and contact of a closed key-card request are forgotten after this",
    )

    device_offline_after_s: float = Field(
        30.0, gt=0, description="a device with no status for this long shows as offline"
    )

    device_unreachable_after_s: float = Field(
        600.0,
        gt=0,
        description="a device with no status for this long is unreachable: an alarm on the"
        " console and in facegate_web_devices_unreachable",
    )

    erasure_sla_days: float = Field(
        30.0, gt=0, description="an erasure pending longer than this is overdue on the dashboard"
    )
    compliance_path: Path | None = Field(
        None,
        description="compliance.yaml: impact assessments (PIA) per site; "
        "default <state>/config/compliance.yaml",
    )

    def compliance(self, state_dir: Path) -> Path:
        return self.compliance_path or state_dir / "config" / "compliance.yaml"

    def cameras(self, state_dir: Path) -> Path:
        return self.cameras_path or state_dir / "config" / "cameras.yaml"

    def retention(self, state_dir: Path) -> Path:
        return self.retention_path or state_dir / "config" / "policies"
