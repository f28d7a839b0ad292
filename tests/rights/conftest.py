"""Fixtures of the residents' rights tests: a private audit log, key, receipts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stream_processor.audit import record
from stream_processor.audit.checkpoint import Checkpointer, CheckpointFile
from stream_processor.audit.keys import OperatorKey
from stream_processor.audit.log import FileAuditLog
from stream_processor.audit.openings import OpeningStore
from stream_processor.audit.settings import AuditPaths

SECRET = b"site-secret-for-tests-0123456789"


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


REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CAMERAS = REPO / "deploy" / "config" / "cameras.example.yaml"

POLICY = """\
tenant: acme
legal_ceiling: 3y
purposes:
  access_control:
    description: open the gate for residents and keep a log of who passed
camera_purposes: [access_control]
retention:
  face_match:   {{access_control: {face}}}
  key_card:     {{access_control: 90d}}
  pin:          {{access_control: 90d}}
  manual_open:  {{access_control: 90d}}
  unknown_face: {{access_control: 0}}
"""


@dataclass
class WebRig:
    """The web app's parts over private files, with a settable clock."""

    deps: object
    state: Path
    policy_path: Path
    cameras_path: Path
    registry: object
    audit: AuditRig

    def set_face_retention(self, value: str) -> None:
        import os

        before = self.policy_path.stat().st_mtime_ns
        self.policy_path.write_text(POLICY.format(face=value))
        # Make the change visible to mtime checks even within one clock tick.
        os.utime(self.policy_path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
def web_rig(tmp_path: Path, audit_rig: AuditRig, clock: Clock) -> Iterator[WebRig]:
    import shutil

    from prometheus_client import CollectorRegistry

    from stream_processor.notices.archive import NoticeArchive
    from stream_processor.notices.config import RegistryFile
    from stream_processor.notices.retention import PolicyFileRetention
    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.keycards import KeycardBook, register_keycard_metrics
    from stream_processor.web.deps import WebDeps

    state = tmp_path / "web-state"
    cameras = state / "config" / "cameras.yaml"
    cameras.parent.mkdir(parents=True)
    shutil.copy(EXAMPLE_CAMERAS, cameras)
    policy = state / "config" / "policies" / "acme.yaml"
    policy.parent.mkdir(parents=True)
    policy.write_text(POLICY.format(face="30d"))
    db = open_rights_db(state / "rights" / "rights.sqlite")
    registry = CollectorRegistry()
    keycards = KeycardBook(db, audit=audit_rig.log, clock=clock)
    register_keycard_metrics(keycards, registry)
    deps = WebDeps(
        cameras=RegistryFile(cameras),
        retention=PolicyFileRetention(policy.parent),
        archive=NoticeArchive(db, audit=audit_rig.log, clock=clock),
        keycards=keycards,
        operator_token="test-token",
        registry=registry,
        clock=clock,
        audit_paths=audit_rig.paths,
    )
    try:
        yield WebRig(deps, state, policy, cameras, registry, audit_rig)
    finally:
        db.close()


def serve(rig: WebRig):  # type: ignore[no-untyped-def]
    """An aiohttp test client over the app (use inside ``async with``)."""
    from aiohttp.test_utils import TestClient, TestServer

    from stream_processor.web.app import create_app

    return TestClient(TestServer(create_app(rig.deps)))  # type: ignore[arg-type]
