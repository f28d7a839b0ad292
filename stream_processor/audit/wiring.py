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
from stream_processor.audit.cosign import Witness, cosign_all
from stream_processor.audit.keys import Keyring, OperatorKey
from stream_processor.audit.log import FileAuditLog
from stream_processor.audit.note import Verifier
from stream_processor.audit.openings import OpeningStore
from stream_processor.audit.settings import AuditPaths, AuditSettings
from stream_processor.audit.tlog import CheckpointStore, TreeCheckpointer, operator_signer
from stream_processor.audit.tree import StoredTree


@dataclass
class Audit:
    settings: AuditSettings
    paths: AuditPaths
    key: OperatorKey
    openings: OpeningStore
    log: FileAuditLog

    tree: StoredTree
    checkpoints: CheckpointStore

    def tree_checkpointer(self) -> TreeCheckpointer:
        return TreeCheckpointer(
            self.tree, self.checkpoints, operator_signer(self.key, self.settings.log_id)
        )

    def checkpointer(self, publisher: CheckpointPublisher | None) -> Checkpointer:
        return Checkpointer(
            self.log,
            self.key,
            CheckpointFile(self.paths.checkpoints),
            publisher,
            self.settings.log_id,
            tree=self.tree_checkpointer(),
        )

    def witnesses(self) -> list[Witness]:
        """The push witnesses of the settings (``FACEGATE_AUDIT_WITNESS_URLS``)."""
        keys = tuple(Verifier.parse(k) for k in self.settings.witness_keys)
        return [Witness(url, keys) for url in self.settings.witness_urls]

    def request_cosignatures(self) -> dict[str, str | None]:
        """Ask the push witnesses to cosign the latest checkpoint; url → None or why not."""
        note = self.checkpoints.latest()
        if note is None or not self.settings.witness_urls:
            return {}
        return cosign_all(
            self.witnesses(), note, self.tree, self.checkpoints, self.settings.witness_timeout_s
        )

    def close(self) -> None:
        self.openings.close()
        self.checkpoints.close()


def open_audit(state_dir: Path, settings: AuditSettings | None = None) -> Audit:
    """The operator's audit log, key (created on first use) and opening index."""
    settings = settings or AuditSettings()
    paths = AuditPaths.of(state_dir, settings)
    key = OperatorKey.load_or_create(paths.secrets)
    paths.root.mkdir(parents=True, exist_ok=True)
    publish_public_key(paths, key)
    openings = OpeningStore(paths.openings)
    return Audit(
        settings,
        paths,
        key,
        openings,
        FileAuditLog(paths.log, openings=openings),
        StoredTree(paths.tree, paths.log),
        CheckpointStore(paths.tree_checkpoints),
    )


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
