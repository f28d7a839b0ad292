"""A private stack with Kafka authentication on, shared by the auth tests of this folder
(one stack start for all of them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from stream_processor.runtime.settings import BrokerSettings
from tests.conftest import FACEGATE, broker_log_tails, free_ports, make_state_dir, stack_env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FACEGATE, *args], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def secured_env(s: BrokerSettings) -> dict[str, str]:
    """What a facegate command needs to reach the secured stack as this host's processes."""
    return {
        "FACEGATE_STATE_DIR": str(s.state_dir),
        "FACEGATE_KAFKA_PORT": str(s.kafka_port),
        "FACEGATE_MQTT_PORT": str(s.mqtt_port),
        "FACEGATE_KAFKA_AUTH": "true",
    }


@pytest.fixture(scope="session")
def secured_stack() -> Iterator[tuple[BrokerSettings, dict[str, str]]]:
    """The secured stack's settings and the environment it was started with."""
    state = make_state_dir("facegate-kafkaauth-")
    env = {**stack_env(state, free_ports(4)), "FACEGATE_KAFKA_AUTH": "true"}
    try:
        up = run_cli(env, "stack", "up")
        assert up.returncode == 0, up.stdout + up.stderr + broker_log_tails(state)
        yield BrokerSettings(
            state_dir=state, kafka_port=int(env["FACEGATE_KAFKA_PORT"]),
            mqtt_port=int(env["FACEGATE_MQTT_PORT"]), kafka_auth=True,
        ), env  # fmt: skip
    finally:
        run_cli(env, "stack", "down")
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def secured(secured_stack: tuple[BrokerSettings, dict[str, str]]) -> BrokerSettings:
    return secured_stack[0]
