"""Multi-host mode (``FACEGATE_AUDIT_MODE=topic``): the web app serves the shared
checkpoint topic as /audit/checkpoints.jsonl, from a copy a thread keeps up to date, not
this host's own file; with Kafka down it serves the copy as last read and says so."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_processor.audit.checkpoint import (
    Checkpoint,
    KafkaCheckpointPublisher,
    read_checkpoint_topic,
)
from stream_processor.audit.checkpoint_mirror import CheckpointMirror, KafkaCheckpointSource
from stream_processor.errors import BrokerError
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import ensure_topics, topic_specs
from tests.conftest import StackHandle, free_ports
from tests.support.audit import fill_log, pseudonym_of
from tests.support.kafka import grant_pipeline, login_kwargs, revoke_private
from tests.support.web import WebRig, serve

URL = "/audit/checkpoints.jsonl"


@pytest.fixture
def shared_topic(
    running_stack: StackHandle, tag: str, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Topics]:  # fmt: skip
    """A checkpoint topic of the test's own, and this process in topic mode on the stack."""
    topics = Topics(audit_checkpoints=f"t.{tag}.audit.checkpoints")
    spec = next(s for s in topic_specs(topics) if s.name == topics.audit_checkpoints)
    ensure_topics(running_stack.settings().kafka_bootstrap, [spec], 1, login_kwargs(running_stack))
    grants = grant_pipeline(
        running_stack, topics, "facegate-processor", "facegate-processor-erasure"
    )
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    for name, value in running_stack.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FACEGATE_AUDIT_MODE", "topic")
    monkeypatch.setenv("FACEGATE_TOPIC_AUDIT_CHECKPOINTS", topics.audit_checkpoints)
    yield topics


def _sign(rig: WebRig) -> Checkpoint:
    """A checkpoint as another host's signer makes it: published, not in this file."""
    fill_log(rig.audit, [pseudonym_of("r-1")], rounds=1)
    cp = rig.audit.checkpointer.checkpoint()
    assert cp is not None
    rig.audit.paths.checkpoints.write_bytes(b"")
    return cp


def _publish(stack: StackHandle, topics: Topics, cp: Checkpoint) -> None:
    bootstrap = stack.settings().kafka_bootstrap
    auth = login_kwargs(stack, Role.AUDIT)
    publisher = KafkaCheckpointPublisher(bootstrap, topics.audit_checkpoints, auth=auth)
    try:
        publisher.publish(cp)
    finally:
        publisher.close()


def _topic(stack: StackHandle, topics: Topics) -> bytes:
    auth = login_kwargs(stack, Role.WEB)
    bootstrap = stack.settings().kafka_bootstrap
    return b"".join(read_checkpoint_topic(bootstrap, topics.audit_checkpoints, auth=auth))


async def _until(client: object, want: bytes, timeout_s: float = 20.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        resp = await client.get(URL)  # type: ignore[attr-defined]
        body = await resp.read()
        if resp.status == 200 and body == want:
            return dict(resp.headers)
        assert time.monotonic() < deadline, (resp.status, body, want)
        await asyncio.sleep(0.3)


def test_topic_mode_serves_the_shared_checkpoints(
    web_rig: WebRig, running_stack: StackHandle, shared_topic: Topics
) -> None:
    one, two, three = (_sign(web_rig) for _ in range(3))
    for cp in (one, two):
        _publish(running_stack, shared_topic, cp)
    first = _topic(running_stack, shared_topic)
    assert first.count(b"\n") == 2

    async def go() -> None:
        async with serve(web_rig) as client:
            headers = await _until(client, first)
            assert "X-Facegate-Checkpoints-Read-At-Ms" in headers
            assert "X-Facegate-Checkpoints-Stale" not in headers
            # A checkpoint another host signs later reaches the copy without a restart.
            await asyncio.to_thread(_publish, running_stack, shared_topic, three)
            await _until(client, _topic(running_stack, shared_topic))

    asyncio.run(go())
    assert web_rig.audit.paths.checkpoints.read_bytes() == b""  # not this host's file


def test_topic_mode_with_kafka_down_serves_the_copy_as_last_read(
    web_rig: WebRig, running_stack: StackHandle, shared_topic: Topics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _publish(running_stack, shared_topic, _sign(web_rig))
    bootstrap = running_stack.settings().kafka_bootstrap
    copy = CheckpointMirror(
        web_rig.audit.paths.checkpoints_copy,
        KafkaCheckpointSource(bootstrap, shared_topic.audit_checkpoints,
                              login_kwargs(running_stack, Role.WEB)),
    )  # fmt: skip
    assert copy.refresh().records == 1
    copy.stop()
    monkeypatch.setenv("FACEGATE_KAFKA_PORT", str(free_ports(1)[0]))

    async def go() -> None:
        async with serve(web_rig) as client:
            resp = await client.get(URL)
            assert resp.status == 200
            assert await resp.read() == _topic(running_stack, shared_topic)
            assert "X-Facegate-Checkpoints-Stale" in resp.headers
            assert resp.headers["Warning"].startswith("110 ")

    asyncio.run(go())
    # Nothing read ever, nothing to serve: a 503 that says so, never an empty 200.
    web_rig.audit.paths.checkpoints_copy.unlink()
    Path(str(web_rig.audit.paths.checkpoints_copy) + ".position").unlink()

    async def empty() -> None:
        async with serve(web_rig) as client:
            resp = await client.get(URL)
            assert resp.status == 503, await resp.text()
            assert resp.headers["Retry-After"] == "5"

    asyncio.run(empty())


class Flaky:
    """A topic that answers, then is unreachable, then answers again."""

    def __init__(self) -> None:
        self.records = [b'{"n":1}', b'{"n":2}']
        self.down = False

    def read_from(self, offset: int) -> tuple[list[bytes], int]:
        if self.down:
            raise BrokerError("broker down")
        return self.records[offset:], len(self.records)

    def close(self) -> None:
        pass


def test_the_copy_outlives_a_lost_broker_and_a_torn_write(tmp_path: Path) -> None:
    source, now = Flaky(), [1000.0]
    path = tmp_path / "checkpoints.topic.jsonl"
    mirror = CheckpointMirror(path, source, clock=lambda: now[0])
    assert mirror.refresh().records == 2 and mirror.read() == b'{"n":1}\n{"n":2}\n'
    source.down, now[0] = True, 1001.0
    state = mirror.refresh()
    assert (state.records, state.read_at_ms, state.failing_since_ms) == (2, 1_000_000, 1_001_000)
    now[0] = 1002.0
    assert mirror.refresh().failing_since_ms == 1_001_000  # since the first failure
    assert mirror.read() == b'{"n":1}\n{"n":2}\n'
    source.down = False
    source.records.append(b'{"n":3}')
    state = mirror.refresh()
    assert (state.records, state.failing_since_ms) == (3, None)
    # A tail written without its position (a crash between the two) is not served
    # after a restart, and is read again from the topic.
    with open(path, "ab") as fh:
        fh.write(b'{"n":4}\n{"n"')
    source.records.append(b'{"n":4}')
    again = CheckpointMirror(path, source, clock=lambda: now[0])
    assert again.state().records == 3 and path.read_bytes().count(b"\n") == 3
    assert again.refresh().records == 4
    assert again.read() == b"".join(r + b"\n" for r in source.records)
