"""The stream workers' Faust producer: a send to a broker that is gone fails within a
bounded time (not Faust's 20 minutes), the producer works again once the broker is
back, and the failed send is not forgotten: every later flush (Faust flushes before it
commits offsets) raises, so no offset is committed past a lost write. Settings checked
as a unit; the bound on a private Kafka that is paused (SIGSTOP: connections open, no
answer) and then killed (SIGKILL: connections refused)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaError
from faust.transport.drivers.aiokafka import Producer as AiokafkaProducer

from stream_processor.errors import ConfigError
from stream_processor.processor.app import new_app
from stream_processor.processor.settings import ProcessorSettings
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import BrokerSettings, Topics
from stream_processor.runtime.workers import (
    AIOKAFKA_CONSUMER_TIMEOUTS,
    PRODUCER_TIMEOUT_S,
    worker_app_settings,
)
from tests.conftest import (
    SUITE_KAFKA_AUTH,
    StackHandle,
    broker_logs_on_failure,
    free_ports,
    make_state_dir,
    stack_env,
)

ROOT = Path(__file__).resolve().parents[2]
#: The bound the real-broker test runs with: small, so that the test takes seconds.
QUICK_S = 3.0


def stop_timeout_s(unit: str) -> float:
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    match = re.search(r"^TimeoutStopSec=(\d+)$", text, re.M)
    assert match, unit
    return float(match.group(1))


@pytest.mark.unit
def test_the_producer_timeout_is_bounded_and_fits_the_supervisor(tmp_path: Path) -> None:
    conf = worker_app_settings(BrokerSettings(), tmp_path / "w", 1.0)
    assert conf["producer_request_timeout"] == PRODUCER_TIMEOUT_S < 1200
    # Outlasts a lost session and a leader election; a stop under systemd finishes in time.
    assert PRODUCER_TIMEOUT_S > AIOKAFKA_CONSUMER_TIMEOUTS["session_timeout_ms"] / 1000
    assert PRODUCER_TIMEOUT_S > conf["broker_session_timeout"]
    for unit in ("facegate-worker@.service", "facegate-erasure.service"):
        assert PRODUCER_TIMEOUT_S < stop_timeout_s(unit)
    assert conf["producer_acks"] == -1
    # aiokafka's idempotent producer never expires a batch: it would wait forever.
    assert not any("idempot" in k for k in conf)
    for bad in (0.0, -1.0, 1e9, float("nan")):
        with pytest.raises(ConfigError, match="producer timeout"):
            worker_app_settings(BrokerSettings(), tmp_path / "w", 1.0, bad)


@pytest.mark.unit
def test_the_processor_setting_reaches_the_aiokafka_producer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FACEGATE_PROCESSOR_PRODUCER_TIMEOUT_S", "7.5")
    from stream_processor.runtime.kafka_auth import ensure_passwords

    ensure_passwords(tmp_path)  # auth is on by default: the logins a 'stack up' makes
    stack = BrokerSettings(state_dir=tmp_path)
    app = new_app(stack, ProcessorSettings())
    assert app.conf.producer_request_timeout == 7.5
    producer = app.producer
    assert isinstance(producer, AiokafkaProducer)
    assert producer._settings_default()["request_timeout_ms"] == 7500
    assert "enable_idempotence" not in producer._settings_extra()
    monkeypatch.setenv("FACEGATE_PROCESSOR_PRODUCER_TIMEOUT_S", "1e9")
    with pytest.raises(ValueError, match="producer_timeout_s"):
        ProcessorSettings()


@pytest.fixture
def private_stack() -> Iterator[StackHandle]:
    """A stack of this test's own: its Kafka is paused and killed here."""
    from tests.support.kafka import forget, register

    state = make_state_dir("facegate-producertest-")
    env = stack_env(state, free_ports(4))
    env["FACEGATE_KAFKA_AUTH"] = "true" if SUITE_KAFKA_AUTH else "false"
    handle = StackHandle(env=env, state_dir=state)
    stack = handle.stack()
    try:
        with broker_logs_on_failure(state):
            stack.up()
        register(handle.settings())
        yield handle
    finally:
        forget(handle.settings())
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


def kafka_pid(handle: StackHandle) -> int:
    from stream_processor.stack import procs
    from stream_processor.stack.kafka import MARKER, Kafka

    pid = procs.running_pid(Kafka(handle.settings()).pidfile, MARKER)
    assert pid is not None, "the private Kafka is not running"
    return pid


async def send(app: faust.App, topic: str) -> float:
    """Seconds until one record is acknowledged, or the send's failure is raised."""
    start = time.monotonic()
    fut = await app.producer.send(topic, b"k", b"v", None, None, None)
    await fut
    return time.monotonic() - start


async def failure_after(app: faust.App, topic: str) -> tuple[float, BaseException]:
    start = time.monotonic()
    try:
        await send(app, topic)
    except Exception as exc:  # noqa: BLE001 - whichever error aiokafka raises is the point
        return time.monotonic() - start, exc
    raise AssertionError("a send to a stopped broker was acknowledged")


@pytest.mark.component
def test_a_send_to_a_gone_broker_fails_within_the_bound(private_stack: StackHandle) -> None:
    from stream_processor.processor.faust_tuning import SendFailed, fail_fast
    from stream_processor.processor.kafka_login import faust_login

    stack = private_stack.settings()
    datadir = private_stack.state_dir / "producer-test"
    app = fail_fast(
        faust.App(
            "producer-test",
            **worker_app_settings(stack, datadir, 1.0, producer_timeout_s=QUICK_S),
            **faust_login(stack, Role.PROCESSOR),
        )
    )
    topic = Topics().dlq  # the processor role writes it (the stack's own ACL plan)
    # Failed once at load ~20 within 0.5 s of its start, before the faults (traceback
    # not kept); with the broker's log tail, such a failure shows whether Kafka was gone.
    with broker_logs_on_failure(private_stack.state_dir):
        pid = kafka_pid(private_stack)
    results: dict[str, Any] = {}

    async def run() -> None:
        await app.producer.start()
        try:
            results["before"] = await send(app, topic)
            await app.producer.flush()  # what Faust does before committing offsets
            os.kill(pid, signal.SIGSTOP)
            try:
                results["paused"] = await failure_after(app, topic)
            finally:
                os.kill(pid, signal.SIGCONT)
            results["resumed"] = await asyncio.wait_for(send(app, topic), 60)
            # Sent again, and yet no commit may follow: the failed send is not forgotten.
            with pytest.raises(SendFailed, match="RequestTimedOutError"):
                await app.producer.flush()
            os.kill(pid, signal.SIGKILL)
            results["killed"] = await failure_after(app, topic)
        finally:
            await asyncio.wait_for(app.producer.stop(), 4 * QUICK_S)

    with broker_logs_on_failure(private_stack.state_dir):
        asyncio.run(run())
    assert results["before"] < QUICK_S
    for case in ("paused", "killed"):
        elapsed, exc = results[case]
        # The batch expires after one bound (aiokafka's request timeout is its TTL too);
        # the rest is slack for a loaded machine.
        assert QUICK_S * 0.5 <= elapsed <= 2 * QUICK_S + 2, (case, elapsed, exc)
        assert isinstance(exc, KafkaError), exc  # the client's error, raised to the caller
        print(f"{case}: {type(exc).__name__} after {elapsed:.1f} s (bound {QUICK_S} s)")
    assert results["resumed"] < 60
