"""Typed settings of the erasure worker (env prefix ``FACEGATE_ERASURE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ErasureSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_ERASURE_", extra="forbid")

    app_id: str | None = Field(
        None,
        description="Faust app id = Kafka consumer group; "
        "default <FACEGATE_PROCESSOR_APP_ID>-erasure",
    )
    db_path: Path | None = Field(
        None, description="SQLite file of erasure progress and receipts; default the rights DB"
    )
    resend_after_s: float = Field(
        300.0,
        gt=0,
        description="re-send the erase command to a site whose devices have not all "
        "acknowledged after this long (a device that never had a session, a failure)",
    )
    forget_window_s: float = Field(
        900.0,
        ge=0,
        description="for this long after a receipt, audit entries about the subject that "
        "appear later (the ledger follower's) have their openings forgotten too",
    )
    withdrawal_resend_first_s: float = Field(
        60.0,
        gt=0,
        description="re-send a withdrawal command this long after it was first sent, "
        "if a device of the site has not acknowledged it; the wait doubles after each send",
    )
    withdrawal_resend_max_s: float = Field(
        1800.0, gt=0, description="the longest wait between two sends of a withdrawal command"
    )
    withdrawal_alarm_after_s: float = Field(
        600.0,
        gt=0,
        description="a withdrawal still unacknowledged by a device this long after it was "
        "made raises the alarm (facegate_withdrawal_devices_overdue, a log line)",
    )
    withdrawal_track_s: float = Field(
        7 * 86400.0,
        gt=0,
        description="withdrawals on the consent ledger older than this when the worker "
        "first sees them are not tracked (a new rights database meets the whole ledger)",
    )
    tick_s: float = Field(5.0, gt=0, description="how often pending erasures are looked at")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus port; 0 = off")
    metrics_host: str = Field(
        "127.0.0.1",
        description="address /metrics binds; 0.0.0.0 where Prometheus scrapes from another"
        " container or host (compose, Kubernetes)",
    )
    retention_refresh_s: float = Field(
        60.0, gt=0, description="how long topic configs read from the broker are reused"
    )
