"""``facegate stack up|down|status`` on its own ports: idempotent both ways."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import FACEGATE, free_ports, make_state_dir, stack_env

pytestmark = pytest.mark.component


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    # FACEGATE_KAFKA_AUTH unset unless a test sets it: a plain 'stack up' is what runs.
    inherited = {k: v for k, v in os.environ.items() if k != "FACEGATE_KAFKA_AUTH"}
    return subprocess.run(
        [FACEGATE, *args], env={**inherited, **env}, capture_output=True, text=True, timeout=300
    )


def test_up_twice_down_twice() -> None:
    state = make_state_dir("facegate-stacktest-")
    env = stack_env(state, free_ports(3))
    try:
        first = run(env, "stack", "up")
        assert first.returncode == 0, first.stderr
        assert "mosquitto : running" in first.stdout and "kafka     : running" in first.stdout
        pids = (
            (state / "kafka" / "kafka.pid").read_text(),
            (state / "mosquitto" / "mosquitto.pid").read_text(),
        )

        second = run(env, "stack", "up")
        assert second.returncode == 0, second.stderr
        # The second 'up' found the running brokers and left them alone.
        assert pids == (
            (state / "kafka" / "kafka.pid").read_text(),
            (state / "mosquitto" / "mosquitto.pid").read_text(),
        )
        assert run(env, "stack", "status").returncode == 0

        conf = (state / "mosquitto" / "mosquitto.conf").read_text()
        assert "allow_anonymous false" in conf and "persistence true" in conf
        props = (state / "kafka" / "server.properties").read_text()
        assert "auto.create.topics.enable=false" in props
        # Auth is on by default: SASL on every listener, recorded for later processes.
        assert "inter.broker.listener.name=SASL_PLAINTEXT" in props
        assert "PLAINTEXT://" not in props.replace("SASL_PLAINTEXT://", "")
        assert (state / "kafka" / "cluster.auth").read_text() == "on\n"
        assert "without authentication" not in first.stderr
        # A setting that contradicts the formatted Kafka: one Error line, nothing started.
        opened = run({**env, "FACEGATE_KAFKA_AUTH": "false"}, "stack", "up")
        assert opened.returncode != 0
        assert opened.stderr.strip().splitlines() == [opened.stderr.strip()]
        assert opened.stderr.startswith("Error: FACEGATE_KAFKA_AUTH=false contradicts")
    finally:
        down1 = run(env, "stack", "down")
        down2 = run(env, "stack", "down")
    try:
        assert down1.returncode == 0 and down2.returncode == 0, down1.stderr + down2.stderr
        assert "stopped" in down2.stdout
        status = run(env, "stack", "status")
        assert status.returncode == 1
        assert "mosquitto : stopped" in status.stdout and "kafka     : stopped" in status.stdout
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_topics_exist_with_configs(running_stack) -> None:  # type: ignore[no-untyped-def]
    from kafka.admin import ConfigResource, ConfigResourceType

    from stream_processor.runtime.settings import Topics
    from tests.support.kafka import admin_client

    topics = Topics()
    admin = admin_client(running_stack)
    try:
        assert {topics.raw, topics.dlq} <= set(admin.list_topics())
        described = admin.describe_topics([topics.raw])[0]
        assert len(described["partitions"]) == topics.raw_partitions
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topics.raw)])
        configs = {c[0]: c[1] for c in res[0].resources[0][4]}
        assert configs["retention.ms"] == str(topics.raw_retention_ms)
        assert configs["segment.ms"] == str(topics.segment_ms)
    finally:
        admin.close()
