"""Web fixtures shared by the web and rights tests: the app's parts over private
files (example cameras, a policy file), a test client, policy versions."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from stream_processor.policy.retention import PolicyVersion
from tests.conftest import REPO
from tests.support.audit import AuditRig, Clock

EXAMPLE_CAMERAS = REPO / "deploy" / "config" / "cameras.example.yaml"

#: How long ``web serve`` may take to stop on SIGTERM. It stops its three Kafka views
#: one after another, joining each for up to 10 s (stream_processor/tail.py); with no
#: Kafka to reach, each can be inside a bootstrap that takes that long on a loaded
#: machine: stops of 25 and 30.4 s were measured at load ~20.
WEB_STOP_S = 90.0


def stop_web(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = WEB_STOP_S) -> None:
    """SIGTERM a ``web serve`` process and wait for it; one that outlives ``timeout_s``
    is killed and fails the test with the end of its log."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise AssertionError(
            f"web serve did not stop within {timeout_s:.0f}s of SIGTERM; its log ends:\n{tail}"
        ) from None


#: A policy document; ``.format(tenant=…, face=…)`` with face retention such as "30d".
POLICY = """\
tenant: {tenant}
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
        self.policy_path.write_text(POLICY.format(tenant="acme", face=value))
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
    from stream_processor.web.tokens import TokenBook

    state = tmp_path / "web-state"
    cameras = state / "config" / "cameras.yaml"
    cameras.parent.mkdir(parents=True)
    shutil.copy(EXAMPLE_CAMERAS, cameras)
    policy = state / "config" / "policies" / "acme.yaml"
    policy.parent.mkdir(parents=True)
    policy.write_text(POLICY.format(tenant="acme", face="30d"))
    db = open_rights_db(state / "rights" / "rights.sqlite")
    registry = CollectorRegistry()
    keycards = KeycardBook(db, audit=audit_rig.log, clock=clock)
    register_keycard_metrics(keycards, registry)
    deps = WebDeps(
        cameras=RegistryFile(cameras),
        retention=PolicyFileRetention(policy.parent),
        archive=NoticeArchive(db, audit=audit_rig.log, clock=clock),
        keycards=keycards,
        tokens=TokenBook(db, clock=clock),
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


def policy_version(face: str, n: int, tenant: str = "acme") -> bytes:
    doc = yaml.safe_load(POLICY.format(tenant=tenant, face=face))
    return PolicyVersion(
        tenant=tenant,
        version=n,
        applied_at_ms=1_790_000_000_000 + n,
        applied_by="test",
        document=doc,
    ).encode()
