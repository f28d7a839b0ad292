"""Audit fixtures shared by the audit, rights and web tests: a private audit
log with its key and a settable clock, pseudonyms, and receipt claims."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.pseudonym import SiteSecret
from stream_processor.audit import record
from stream_processor.audit.checkpoint import Checkpointer, CheckpointFile
from stream_processor.audit.keys import OperatorKey
from stream_processor.audit.log import FileAuditLog
from stream_processor.audit.openings import OpeningStore
from stream_processor.audit.settings import AuditPaths
from stream_processor.rights.receipts import (
    FORMAT,
    Deletion,
    DeviceAck,
    ErasureScope,
    KafkaCopy,
    ReceiptClaims,
)

SECRET = SiteSecret("acme", "north", b"site-secret-for-tests-0123456789")


def pseudonym_of(resident_id: str) -> str:
    from edge_agent.pseudonym import pseudonym

    return pseudonym(SECRET, resident_id)


def uuid7() -> str:
    from edge_agent.wire import new_event_id

    return new_event_id()


class Clock:
    """A settable clock (seconds)."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class AuditRig:
    paths: AuditPaths
    key: OperatorKey
    openings: OpeningStore
    log: FileAuditLog
    checkpointer: Checkpointer
    clock: Clock

    @property
    def log_path(self) -> Path:
        return self.paths.log

    def lines(self) -> list[bytes]:
        return self.paths.log.read_bytes().splitlines(keepends=True)

    def write_lines(self, lines: list[bytes]) -> None:
        self.paths.log.write_bytes(b"".join(lines))

    def checkpoint_lines(self) -> list[bytes]:
        return self.paths.checkpoints.read_bytes().splitlines(keepends=True)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def audit_rig(tmp_path: Path, clock: Clock) -> Iterator[AuditRig]:
    paths = AuditPaths.of(tmp_path / "state")
    key = OperatorKey.load_or_create(paths.secrets)
    openings = OpeningStore(paths.openings)
    log = FileAuditLog(paths.log, openings=openings, clock=clock, fsync=False)
    cp = Checkpointer(log, key, CheckpointFile(paths.checkpoints), None, "test-log", clock=clock)
    paths.public_key.write_text(key.public.pem())
    try:
        yield AuditRig(paths, key, openings, log, cp, clock)
    finally:
        openings.close()


def fill_log(rig: AuditRig, subjects: list[str], rounds: int = 2) -> None:
    """A realistic mix of entries: consent, policy, sweeps, erasure requests."""
    record.policy_version(
        rig.log, tenant="acme", version=1, document={"default_days": 30}, applied_by="cli"
    )
    for r in range(rounds):
        for s in subjects:
            record.consent_changed(
                rig.log,
                tenant="acme",
                site="north",
                subject=s,
                purpose="access_control",
                granted=True,
                by_guardian=False,
                evidence_ref=f"form-{r}",
            )
            rig.clock.advance(1)
        record.retention_sweep(
            rig.log,
            tenant="acme",
            site="north",
            deleted={"face_match": 3 + r, "key_card": 1},
            cutoff_ms=int(rig.clock.now * 1000),
            policy_version=1,
        )


@pytest.fixture
def request_id() -> str:
    return uuid7()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


SUBJECT = pseudonym_of("resident-00042")


def make_claims(request_id: str, subject: str = SUBJECT) -> ReceiptClaims:
    return ReceiptClaims(
        format=FORMAT,
        request_id=request_id,
        tenant="acme",
        site="north",
        subject=subject,
        scope=ErasureScope(purposes=None),
        deletions=[
            Deletion(where="event_store", what="stored events", count=17),
            Deletion(where="aggregates", what="per-subject aggregates", count=0),
            Deletion(where="kafka:facegate.consent", what="consent records (tombstoned)", count=1),
        ],
        devices=[
            DeviceAck(
                gate="main",
                device="cam-1",
                command_id=uuid7(),
                status="done",
                templates_removed=1,
                outbox_events_purged=2,
                acked_at_ms=1_790_000_001_000,
            )
        ],
        kafka=[KafkaCopy(topic="facegate.events.raw", gone_by_ms=1_790_608_000_000)],
        requested_at_ms=1_790_000_000_000,
        completed_at_ms=1_790_000_002_000,
    )
