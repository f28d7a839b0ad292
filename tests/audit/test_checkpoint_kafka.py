"""Signed checkpoints reach the real Kafka topic, and the log verifies against that copy."""

from __future__ import annotations

import os
import subprocess

import pytest

from stream_processor.audit.checkpoint import (
    Checkpoint,
    Checkpointer,
    CheckpointFile,
    KafkaCheckpointPublisher,
    read_checkpoint_topic,
)
from stream_processor.audit.verify import verify_log
from stream_processor.errors import BrokerError
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import ensure_topics, topic_specs
from tests.conftest import FACEGATE, StackHandle
from tests.support.audit import AuditRig, fill_log, pseudonym_of
from tests.support.kafka import grant_pipeline, login_kwargs, private_host, revoke_private

pytestmark = pytest.mark.component


class Down:
    """A publisher whose broker is unreachable."""

    def publish(self, checkpoint: Checkpoint) -> None:
        raise BrokerError("broker down")


def test_checkpoints_published_and_verified_from_kafka(
    running_stack: StackHandle, audit_rig: AuditRig, tag: str, request: pytest.FixtureRequest
) -> None:
    topics = Topics(audit_checkpoints=f"t.{tag}.audit.checkpoints")
    bootstrap = running_stack.settings().kafka_bootstrap
    spec = next(s for s in topic_specs(topics) if s.name == topics.audit_checkpoints)
    assert spec.partitions == 1 and spec.configs["retention.ms"] == "-1"
    assert ensure_topics(bootstrap, [spec], 1, login_kwargs(running_stack)) == [spec.name]
    # The checkpointer publishes as the audit role, and verify reads as it: held to the plan.
    grants = grant_pipeline(
        running_stack, topics, "facegate-processor", "facegate-processor-erasure"
    )
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    auth = login_kwargs(running_stack, Role.AUDIT)

    file = CheckpointFile(audit_rig.paths.checkpoints)
    subjects = [pseudonym_of("r-1"), pseudonym_of("r-2")]

    # The broker is down for the first checkpoint: it is kept in the file...
    fill_log(audit_rig, subjects, rounds=1)
    offline = Checkpointer(audit_rig.log, audit_rig.key, file, Down(), "test-log")
    with pytest.raises(BrokerError):
        offline.checkpoint()
    assert file.published_offset() == 0

    # ...and published with the next one, in order.
    publisher = KafkaCheckpointPublisher(bootstrap, topics.audit_checkpoints, auth=auth)
    try:
        online = Checkpointer(audit_rig.log, audit_rig.key, file, publisher, "test-log")
        fill_log(audit_rig, subjects, rounds=1)
        second = online.checkpoint()
        assert second is not None
        assert online.checkpoint() is None  # head unchanged: nothing new to sign
    finally:
        publisher.close()
    assert file.unpublished() == []
    assert file.published_offset() == audit_rig.paths.checkpoints.stat().st_size

    copy = read_checkpoint_topic(bootstrap, topics.audit_checkpoints, auth=auth)
    assert copy == audit_rig.checkpoint_lines()
    report = verify_log(audit_rig.lines(), copy, audit_rig.key.public)
    assert report.ok, report.findings
    assert report.checkpoints == 2 and report.last_checkpoint_seq == second.seq

    # The operator edits its own files; the Kafka copy still convicts the log.
    lines = audit_rig.lines()
    del lines[2]
    audit_rig.write_lines(lines)
    audit_rig.paths.checkpoints.write_bytes(b"")
    env = {
        **os.environ,
        **running_stack.env,
        "FACEGATE_TOPIC_AUDIT_CHECKPOINTS": topics.audit_checkpoints,
    }
    done = subprocess.run(
        [
            FACEGATE,
            "audit",
            "verify",
            "--checkpoints-from-kafka",
            "--log",
            str(audit_rig.paths.log),
            "--public-key",
            str(audit_rig.paths.public_key),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL entry seq=3 (line 3): missing_entry" in done.stdout


def test_checkpointer_process_signs_and_publishes_until_stopped(
    running_stack: StackHandle,
    tmp_path,
    tag: str,  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest,
) -> None:
    import signal

    from stream_processor.audit.wiring import open_audit
    from tests.conftest import wait_for

    topics = Topics(audit_checkpoints=f"t.{tag}.audit.checkpoints")
    bootstrap = running_stack.settings().kafka_bootstrap
    ensure_topics(
        bootstrap,
        [s for s in topic_specs(topics) if s.name == topics.audit_checkpoints],
        1,
        login_kwargs(running_stack),
    )
    state = tmp_path / "state"
    # The checkpointer is a host of its own (its state dir): it logs in as the audit role.
    grants = private_host(running_stack, state, topics, Role.AUDIT)
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    audit = open_audit(state)
    from stream_processor.audit import record

    env = {
        **os.environ,
        **running_stack.env,
        "FACEGATE_STATE_DIR": str(state),
        "FACEGATE_TOPIC_AUDIT_CHECKPOINTS": topics.audit_checkpoints,
    }
    log = open(tmp_path / "cp.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [FACEGATE, "audit", "checkpointer", "--interval", "0.5"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def published_seqs() -> set[int]:
        from stream_processor.audit.checkpoint import decode_checkpoint

        lines = read_checkpoint_topic(
            bootstrap, topics.audit_checkpoints, auth=login_kwargs(running_stack)
        )
        return {decode_checkpoint(line.rstrip(b"\n")).seq for line in lines}

    try:
        wait_for(
            lambda: b"audit checkpointer:" in (tmp_path / "cp.log").read_bytes(),
            60,
            "the checkpointer to start",
        )
        for i in range(3):
            entry = record.policy_version(
                audit.log, tenant="acme", version=i, document={}, applied_by="t"
            ).entry
            seq = entry.seq
            wait_for(lambda s=seq: s in published_seqs(), 30, f"a checkpoint at seq {seq}", 1.0)
        record.policy_version(audit.log, tenant="acme", version=9, document={}, applied_by="t")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log.close()
    audit.close()
    copy = read_checkpoint_topic(
        bootstrap, topics.audit_checkpoints, auth=login_kwargs(running_stack)
    )
    report = verify_log(audit.paths.log.read_bytes().splitlines(True), copy, audit.key.public)
    assert report.ok, report.findings
    assert report.last_checkpoint_seq == 3  # the entry written just before the stop is signed
