"""Kafka auth is on unless the local stack's Kafka was formatted open: the default
follows the state dir's recorded mode, and a setting that contradicts it is refused
with one line that says what to do (clients and brokers must never disagree)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_processor.errors import ConfigError
from stream_processor.runtime.settings import (
    BrokerSettings,
    kafka_auth_file,
    recorded_kafka_auth,
    resolve_kafka_auth,
)
from stream_processor.stack.settings import StackSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("FACEGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FACEGATE_STATE_DIR", str(tmp_path))


def formatted(state: Path, record: str | None = None, users_marker: bool = False) -> None:
    """A node-1 Kafka as ``stack up`` leaves it: formatted, with or without the record
    of its auth mode and the marker of SCRAM users made at format."""
    (state / "kafka" / "data").mkdir(parents=True)
    (state / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")
    if record is not None:
        kafka_auth_file(state).write_text(record + "\n")
    if users_marker:
        (state / "kafka" / "scram-users").write_text("SCRAM users created at format\n")


def test_no_local_kafka_means_auth_on(tmp_path: Path) -> None:
    assert recorded_kafka_auth(tmp_path) is None
    assert BrokerSettings().kafka_auth is True
    assert StackSettings().kafka_auth is True


def test_recorded_off_stays_off(tmp_path: Path) -> None:
    formatted(tmp_path, "off")
    assert BrokerSettings().kafka_auth is False
    assert StackSettings().kafka_auth is False


def test_recorded_on_stays_on(tmp_path: Path) -> None:
    formatted(tmp_path, "on", users_marker=True)
    assert BrokerSettings().kafka_auth is True


def test_a_format_older_than_the_record_without_users_stays_open(tmp_path: Path) -> None:
    formatted(tmp_path)
    assert recorded_kafka_auth(tmp_path) is False
    assert BrokerSettings().kafka_auth is False


def test_a_format_older_than_the_record_with_users_stays_on(tmp_path: Path) -> None:
    formatted(tmp_path, users_marker=True)
    assert BrokerSettings().kafka_auth is True


def test_a_record_without_a_formatted_kafka_does_not_bind(tmp_path: Path) -> None:
    # An operator who removed the data dir (losing its topics) may format anew either way.
    (tmp_path / "kafka").mkdir()
    kafka_auth_file(tmp_path).write_text("off\n")
    assert recorded_kafka_auth(tmp_path) is None
    assert BrokerSettings().kafka_auth is True


@pytest.mark.parametrize(("record", "flag"), [("off", "true"), ("on", "false")])
def test_a_contradicting_flag_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, record: str, flag: str
) -> None:
    formatted(tmp_path, record, users_marker=record == "on")
    monkeypatch.setenv("FACEGATE_KAFKA_AUTH", flag)
    with pytest.raises(ConfigError) as caught:
        BrokerSettings()
    message = str(caught.value)
    assert f"FACEGATE_KAFKA_AUTH={flag}" in message
    assert "new FACEGATE_STATE_DIR" in message
    assert f"set it {'true' if record == 'on' else 'false'}" in message
    with pytest.raises(ConfigError):
        StackSettings(kafka_auth=flag == "true")


@pytest.mark.parametrize("record", ["off", "on"])
def test_a_matching_flag_is_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, record: str
) -> None:
    formatted(tmp_path, record)
    monkeypatch.setenv("FACEGATE_KAFKA_AUTH", "true" if record == "on" else "false")
    assert BrokerSettings().kafka_auth is (record == "on")


@given(explicit=st.none() | st.booleans(), recorded=st.none() | st.booleans())
def test_resolution_never_lets_clients_and_brokers_disagree(
    explicit: bool | None, recorded: bool | None
) -> None:
    try:
        got = resolve_kafka_auth(explicit, recorded, Path("/state"))
    except ConfigError:
        assert explicit is not None and recorded is not None and explicit != recorded
        return
    if recorded is not None:
        assert got is recorded
    else:
        assert got is (True if explicit is None else explicit)


def test_the_cli_says_it_in_one_error_line(tmp_path: Path) -> None:
    formatted(tmp_path, "off")
    env = {**os.environ, "FACEGATE_KAFKA_AUTH": "true"}
    facegate = str(Path(sys.executable).with_name("facegate"))
    done = subprocess.run(
        [facegate, "status"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: FACEGATE_KAFKA_AUTH=true contradicts")
    assert "Traceback" not in done.stdout + done.stderr
