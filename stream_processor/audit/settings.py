"""Audit settings (env prefix ``FACEGATE_AUDIT_``) and where its files live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
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
    mode: Literal["file", "topic"] = Field(
        "file",
        description="file: one host's processes extend the local log file (the demo); topic:"
        " several hosts publish facts to Kafka, one 'facegate audit writer' chains them, and"
        " every host keeps a verified copy of the chain topic",
    )
    chain_wait_s: float = Field(
        10.0,
        gt=0,
        description="topic mode: how long an append waits for its entry to come back chained"
        " before it fails (no writer running, or Kafka unreachable)",
    )
    writer_group: str = Field(
        "facegate-audit-writer",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="topic mode: consumer group and transactional id of the chaining writers"
        " (one per deployment: the writers of one chain must share it; keep the"
        " facegate-audit prefix, which the audit role's Kafka ACLs cover)",
    )
    checkpoint_interval_s: float = Field(
        60.0, gt=0, description="how often the checkpointer signs the head of the log"
    )
    dir: Path | None = Field(
        None, description="folder of the log and checkpoints; default <state>/audit"
    )
    witness_keys: list[str] = Field(
        default_factory=list,
        description="verifier keys (<name>+<hash>+<base64>) of the witnesses whose "
        "cosignatures the log accepts and serves with its checkpoints",
    )
    witness_urls: list[str] = Field(
        default_factory=list,
        description="tlog-witness submission prefixes (http://host:port) asked to cosign "
        "each new checkpoint (POST <prefix>/add-checkpoint)",
    )
    witness_timeout_s: float = Field(
        5.0, gt=0, description="how long one witness may take to answer add-checkpoint"
    )
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="address the follower's and checkpointer's /metrics bind (with"
        " --metrics-port); 0.0.0.0 where Prometheus scrapes from another host or container",
    )

    @field_validator("witness_keys")
    @classmethod
    def _keys_parse(cls, keys: list[str]) -> list[str]:
        from stream_processor.audit.note import COSIGNATURE_V1, check_verifier_keys

        return check_verifier_keys(
            keys, COSIGNATURE_V1, "{name}: a witness key is a cosignature/v1 key"
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
    def checkpoints_copy(self) -> Path:
        """Topic mode: this host's copy of the shared checkpoint topic (checkpoint_mirror)."""
        return self.root / "checkpoints.topic.jsonl"

    @property
    def openings(self) -> Path:
        """Private: never published."""
        return self.root / "private" / "openings.sqlite"

    @property
    def tree(self) -> Path:
        """The stored Merkle tree (derived from the log; rebuilt if removed)."""
        return self.root / "tree"

    @property
    def tree_checkpoints(self) -> Path:
        """Signed C2SP checkpoints and their cosignatures."""
        return self.root / "checkpoints.sqlite"

    @property
    def public_key(self) -> Path:
        return self.root / "operator-public.pem"
