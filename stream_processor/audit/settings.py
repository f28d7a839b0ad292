"""Audit settings (env prefix ``FACEGATE_AUDIT_``) and where its files live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_AUDIT_", extra="forbid")

    log_id: str = Field(
        "facegate",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="names this log in checkpoints and receipts (e.g. the operator's domain)",
    )
    checkpoint_interval_s: float = Field(
        60.0, gt=0, description="how often the checkpointer signs the head of the log"
    )
    dir: Path | None = Field(
        None, description="folder of the log and checkpoints; default <state>/audit"
    )


@dataclass(frozen=True)
class AuditPaths:
    root: Path
    secrets: Path

    @classmethod
    def of(cls, state_dir: Path, settings: AuditSettings | None = None) -> AuditPaths:
        root = settings.dir if settings and settings.dir else state_dir / "audit"
        return cls(root=root, secrets=state_dir / "secrets")

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints.jsonl"

    @property
    def openings(self) -> Path:
        """Private: never published."""
        return self.root / "private" / "openings.sqlite"

    @property
    def public_key(self) -> Path:
        return self.root / "operator-public.pem"
