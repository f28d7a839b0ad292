"""Builds the audit objects of one process from the state directory (composition roots call it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stream_processor.audit.checkpoint import (
    Checkpointer,
    CheckpointFile,
    CheckpointPublisher,
    KafkaCheckpointPublisher,
)
from stream_processor.audit.keys import Keyring, OperatorKey
from stream_processor.audit.log import FileAuditLog
from stream_processor.audit.openings import OpeningStore
from stream_processor.audit.settings import AuditPaths, AuditSettings


@dataclass
class Audit:
    settings: AuditSettings
    paths: AuditPaths
    key: OperatorKey
    openings: OpeningStore
    log: FileAuditLog

    def checkpointer(self, publisher: CheckpointPublisher | None) -> Checkpointer:
        return Checkpointer(
            self.log,
            self.key,
            CheckpointFile(self.paths.checkpoints),
            publisher,
            self.settings.log_id,
        )

    def close(self) -> None:
        self.openings.close()


def open_audit(state_dir: Path, settings: AuditSettings | None = None) -> Audit:
    """The operator's audit log, key (created on first use) and opening index."""
    settings = settings or AuditSettings()
    paths = AuditPaths.of(state_dir, settings)
    key = OperatorKey.load_or_create(paths.secrets)
    paths.root.mkdir(parents=True, exist_ok=True)
    publish_public_key(paths, key)
    openings = OpeningStore(paths.openings)
    return Audit(settings, paths, key, openings, FileAuditLog(paths.log, openings=openings))


def publish_public_key(paths: AuditPaths, key: OperatorKey) -> None:
    """Make sure the published key file holds ``key`` (appended after earlier keys)."""
    if paths.public_key.exists():
        if Keyring.load(paths.public_key).get(key.key_id) is not None:
            return
        with open(paths.public_key, "a") as fh:
            fh.write(key.public.pem())
        return
    paths.public_key.write_text(key.public.pem())


def kafka_publisher(bootstrap: str, topic: str) -> KafkaCheckpointPublisher:
    return KafkaCheckpointPublisher(bootstrap, topic)
