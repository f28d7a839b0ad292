"""Settings of the local stack's Prometheus (env prefix ``FACEGATE_PROMETHEUS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_processor.stack.settings import REPO_ROOT


class MonitoringSettings(BaseSettings):
    """The local Prometheus (env prefix ``FACEGATE_PROMETHEUS_``)."""

    model_config = SettingsConfigDict(env_prefix="FACEGATE_PROMETHEUS_", extra="forbid")

    host: str = Field("127.0.0.1", description="address Prometheus listens on")
    port: int = Field(9090, ge=1, le=65535, description="port of Prometheus's UI and API")
    scrape_interval_s: float = Field(
        15.0, ge=1, le=300, description="how often every target is scraped"
    )
    evaluation_interval_s: float = Field(
        15.0, ge=1, le=300, description="how often the alert rules are evaluated"
    )
    rules_dir: Path = Field(
        REPO_ROOT / "deploy" / "prometheus",
        description="folder of alert rule files (*.yml) Prometheus loads",
    )
    retention: str = Field(
        "15d", pattern=r"^[0-9]+(h|d|w|y)$", description="how long samples are kept"
    )
    start_timeout_s: float = Field(60.0, gt=0, description="how long to wait for readiness")
