"""Builds the audit objects of one process from the state directory (composition roots call it)."""

from __future__ import annotations

import fcntl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream_processor.audit import record
from stream_processor.audit.chain_topic import ChainTopicReader
from stream_processor.audit.checkpoint import (
    Checkpointer,
    CheckpointFile,
    CheckpointPublisher,
    KafkaCheckpointPublisher,
)
from stream_processor.audit.checkpoint_mirror import CheckpointMirror, KafkaCheckpointSource
from stream_processor.audit.cosign import Witness, cosign_all
from stream_processor.audit.facts import KafkaFactPublisher
from stream_processor.audit.keys import KEY_FILE, Keyring, OperatorKey
from stream_processor.audit.log import FileAuditLog
from stream_processor.audit.note import Verifier
from stream_processor.audit.openings import Openings, OpeningStore, SharedOpenings
from stream_processor.audit.settings import AuditPaths, AuditSettings
from stream_processor.audit.tlog import (
    CheckpointStore,
    TreeCheckpointer,
    TreeHead,
    operator_signer,
)
from stream_processor.audit.topic_log import TopicAuditLog
from stream_processor.audit.tree import StoredTree
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics


@dataclass
class Audit:
    settings: AuditSettings
    paths: AuditPaths
    key: OperatorKey
    openings: Openings
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
        size = TreeHead.parse(note.text).size
        # A witness that already cosigned this size is not asked again each round.
        todo = [w for w in self.witnesses() if self.checkpoints.witness_head(w.url) < size]
        return cosign_all(todo, note, self.tree, self.checkpoints, self.settings.witness_timeout_s)

    def keep_synced(self, interval_s: float = 1.0) -> None:
        """Multi-host mode: keep this host's copy of the chain current in the background
        (a no-op for the local file: it is the log itself)."""
        if isinstance(self.log, TopicAuditLog):
            self.log.keep_synced(interval_s)

    def close(self) -> None:
        if isinstance(self.log, TopicAuditLog):
            self.log.close()
        self.openings.close()
        self.checkpoints.close()


def open_audit(
    state_dir: Path, settings: AuditSettings | None = None, role: Role = Role.OFFICE
) -> Audit:
    """The operator's audit log, key (created on first use) and opening index.

    ``role``: who this process is on Kafka, in the multi-host mode
    (``FACEGATE_AUDIT_MODE=topic``), where the log is a copy of the chain topic and
    appends go through the chaining writer.

    A key file that vanished while the log and its published keys remain is a
    lost key: the new key is never silent, a ``key_rotated`` entry (reason
    ``key_lost``, naming the new key) is logged before it signs anything."""
    settings = settings or AuditSettings()
    paths = AuditPaths.of(state_dir, settings)
    had_key = (paths.secrets / KEY_FILE).exists()
    key = OperatorKey.load_or_create(paths.secrets)
    paths.root.mkdir(parents=True, exist_ok=True)
    previous = publish_public_key(paths, key)
    openings = open_openings(state_dir, paths, settings)
    try:
        log_ = _log(paths, openings, settings, role)
    except BaseException:
        openings.close()
        raise
    if not had_key and previous is not None and (previous or log_.head().seq >= 0):
        record.key_rotated(
            log_,
            old_key_id=previous[-1] if previous else "unknown",
            new_key_id=key.key_id,
            reason="key_lost",
            new_vkey=operator_signer(key, settings.log_id).verifier.vkey(),
        )
    return Audit(
        settings,
        paths,
        key,
        openings,
        log_,
        StoredTree(paths.tree, paths.log),
        CheckpointStore(paths.tree_checkpoints),
    )


def open_openings(state_dir: Path, paths: AuditPaths, settings: AuditSettings) -> Openings:
    """The rights database's openings when several hosts append to one chain (the chain
    topic and a shared ``FACEGATE_RIGHTS_DSN``): any host may open any entry. Else this
    host's file: with a log file per host, entry numbers repeat across hosts, so they
    cannot share one table."""
    from stream_processor.rights.settings import RightsDbSettings

    if settings.mode != "topic" or RightsDbSettings().dsn is None:
        return OpeningStore(paths.openings)
    from stream_processor.rights.db import connect_rights_db

    return SharedOpenings(connect_rights_db(state_dir))


def _log(
    paths: AuditPaths, openings: Openings, settings: AuditSettings, role: Role
) -> FileAuditLog:
    if settings.mode == "file":
        return FileAuditLog(paths.log, openings=openings)
    broker = BrokerSettings()
    topics = Topics()
    auth = kafka_python_auth(broker, role)
    log_ = TopicAuditLog(
        paths.log,
        ChainTopicReader(broker.kafka_bootstrap, topics.audit_chain, auth),
        KafkaFactPublisher(broker.kafka_bootstrap, topics.audit_facts, auth),
        openings=openings,
        wait_s=settings.chain_wait_s,
    )
    log_.sync()
    return log_


def publish_public_key(paths: AuditPaths, key: OperatorKey) -> list[str] | None:
    """Make sure the published key file holds ``key`` (appended after earlier keys).

    Returns the key ids the file held before, when this call added ``key``
    (under an exclusive lock: of several processes, exactly one adds it);
    None when it was there already."""
    paths.public_key.parent.mkdir(parents=True, exist_ok=True)
    with open(paths.public_key, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            text = fh.read()
            before = Keyring.from_pem(text.encode()).key_ids if text.strip() else []
            if key.key_id in before:
                return None
            fh.write(key.public.pem())
            fh.flush()
            return before
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def kafka_publisher(
    bootstrap: str, topic: str, auth: Mapping[str, Any] | None = None
) -> KafkaCheckpointPublisher:
    """``auth``: the publishing role's kafka-python login (runtime/kafka_auth)."""
    return KafkaCheckpointPublisher(bootstrap, topic, auth=auth)


def checkpoint_mirror(paths: AuditPaths, role: Role = Role.WEB) -> CheckpointMirror:
    """Topic mode: this host's copy of the shared checkpoint topic, read as ``role``
    (not started: ``start()`` follows the topic on a thread of its own)."""
    broker = BrokerSettings()
    auth = kafka_python_auth(broker, role)
    source = KafkaCheckpointSource(broker.kafka_bootstrap, Topics().audit_checkpoints, auth)
    return CheckpointMirror(paths.checkpoints_copy, source)
