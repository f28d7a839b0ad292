"""``stack up`` records the auth mode its Kafka is formatted with, and says so in one
line when that Kafka runs open (no broker is started here: the recording step alone)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from stream_processor.runtime.settings import kafka_auth_file, recorded_kafka_auth
from stream_processor.stack.cluster import KafkaCluster
from stream_processor.stack.settings import StackSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FACEGATE_"):
            monkeypatch.delenv(name)


def test_a_new_state_dir_is_recorded_on_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    KafkaCluster(StackSettings(state_dir=tmp_path))._record_auth()
    assert kafka_auth_file(tmp_path).read_text() == "on\n"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_state_dir_formatted_open_before_the_record_stays_open_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")
    settings = StackSettings(state_dir=tmp_path)
    assert settings.kafka_auth is False
    with caplog.at_level(logging.WARNING):
        KafkaCluster(settings)._record_auth()
    assert kafka_auth_file(tmp_path).read_text() == "off\n"
    assert recorded_kafka_auth(tmp_path) is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "without authentication" in warnings[0] and "FACEGATE_STATE_DIR" in warnings[0]


def test_an_explicit_opt_out_is_recorded_off(tmp_path: Path) -> None:
    KafkaCluster(StackSettings(state_dir=tmp_path, kafka_auth=False))._record_auth()
    assert kafka_auth_file(tmp_path).read_text() == "off\n"
