"""Witness settings (env prefix ``FACEGATE_WITNESS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_processor.audit.note import ED25519, check_verifier_keys


class WitnessSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_WITNESS_", extra="forbid")

    name: str = Field(
        "witness.example.org/facegate",
        pattern=r"^[^\s+]+$",
        description="the witness's key name in cosignatures (a schema-less URL naming it)",
    )
    state_dir: Path = Field(
        Path(".facegate-witness"),
        description="the witness's own key and SQLite state; keep it off the operator's hosts",
    )
    log_url: str = Field(
        "http://127.0.0.1:8080",
        description="the operator's web app (its /audit/checkpoint and proofs are read)",
    )
    log_keys: list[str] = Field(
        default_factory=list,
        description="the operator's checkpoint verifier keys (<origin>+<hash>+<base64>)",
    )
    interval_s: float = Field(10.0, gt=0, description="seconds between rounds")
    host: str = Field("127.0.0.1", description="where /metrics and /fork-statements listen")
    port: int = Field(9780, ge=0, le=65535, description="that port (0: do not listen)")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout towards the log")

    @field_validator("log_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        return check_verifier_keys(keys, ED25519, "a log key is an Ed25519 note key (type 0x01)")
