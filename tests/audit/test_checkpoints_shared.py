"""Multi-host mode (``FACEGATE_AUDIT_MODE=topic``): ``audit verify`` takes the checkpoints
from the shared topic without being asked, since a host's own file holds only what that
host signed; file mode keeps the file; an unreachable Kafka is one ``Error:`` line."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from stream_processor.audit.checkpoint import KafkaCheckpointPublisher
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import ensure_topics, topic_specs
from tests.conftest import FACEGATE, StackHandle, free_ports
from tests.support.audit import AuditRig, fill_log, pseudonym_of
from tests.support.kafka import grant_pipeline, login_kwargs, revoke_private

pytestmark = pytest.mark.component


def _verify(rig: AuditRig, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["audit", "verify", "--json", "--log", str(rig.paths.log)]
    args += ["--public-key", str(rig.paths.public_key), *extra]
    return subprocess.run([FACEGATE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_topic_mode_verifies_against_the_shared_checkpoints_by_default(
    running_stack: StackHandle, audit_rig: AuditRig, tag: str, request: pytest.FixtureRequest
) -> None:
    topics = Topics(audit_checkpoints=f"t.{tag}.audit.checkpoints")
    bootstrap = running_stack.settings().kafka_bootstrap
    spec = next(s for s in topic_specs(topics) if s.name == topics.audit_checkpoints)
    ensure_topics(bootstrap, [spec], 1, login_kwargs(running_stack))
    grants = grant_pipeline(
        running_stack, topics, "facegate-processor", "facegate-processor-erasure"
    )
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    publisher = KafkaCheckpointPublisher(
        bootstrap, topics.audit_checkpoints, auth=login_kwargs(running_stack, Role.AUDIT)
    )
    last = -1
    try:
        for _ in range(2):  # signed by "another host": published, then gone from this file
            fill_log(audit_rig, [pseudonym_of("r-1")], rounds=1)
            cp = audit_rig.checkpointer.checkpoint()
            assert cp is not None
            publisher.publish(cp)
            last = cp.seq
    finally:
        publisher.close()
    audit_rig.paths.checkpoints.write_bytes(b"")
    env = {**os.environ, **running_stack.env,
           "FACEGATE_TOPIC_AUDIT_CHECKPOINTS": topics.audit_checkpoints}  # fmt: skip

    topic_mode = {**env, "FACEGATE_AUDIT_MODE": "topic"}
    shared = _verify(audit_rig, topic_mode)
    assert shared.returncode == 0, shared.stdout + shared.stderr
    report = json.loads(shared.stdout)
    assert report["checkpoints"] == 2 and report["last_checkpoint_seq"] == last
    # The explicit flag, as scripts pass it, reads the same.
    flagged = _verify(audit_rig, topic_mode, "--checkpoints-from-kafka")
    assert json.loads(flagged.stdout)["checkpoints"] == 2, flagged.stdout + flagged.stderr
    # File mode: this host's own (here empty) file, as before.
    own = _verify(audit_rig, {**env, "FACEGATE_AUDIT_MODE": "file"})
    assert own.returncode == 0, own.stdout + own.stderr
    assert json.loads(own.stdout)["checkpoints"] == 0


def test_topic_mode_verify_with_kafka_down_is_one_error_line(
    running_stack: StackHandle, audit_rig: AuditRig
) -> None:
    fill_log(audit_rig, [pseudonym_of("r-1")], rounds=1)
    env = {**os.environ, **running_stack.env, "FACEGATE_AUDIT_MODE": "topic",
           "FACEGATE_KAFKA_PORT": str(free_ports(1)[0])}  # fmt: skip
    done = _verify(audit_rig, env)
    assert done.returncode == 69, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: "), done.stderr
    assert "Traceback" not in done.stderr
