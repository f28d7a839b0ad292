"""A stack fixture whose brokers fail to start shows their log tails before its state
dir (the only record of why) is removed: the brokers' own logs, never Kafka's data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import broker_log_tails, broker_logs_on_failure


def _state(tmp_path: Path) -> Path:
    for rel, lines in {
        "kafka/logs/server.log": [f"server line {i}" for i in range(100)],
        "kafka-2/logs/stdout.log": ["node 2 stdout"],
        "mosquitto/mosquitto.log": ["mosquitto line"],
        "kafka/data/t.raw-0/00000000000000000000.log": ["segment bytes"],
    }.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return tmp_path


def test_the_tails_are_each_brokers_last_lines_and_no_data_segment(tmp_path: Path) -> None:
    text = broker_log_tails(_state(tmp_path), lines=3)
    assert "server line 99" in text and "server line 97" in text
    assert "server line 96" not in text
    assert "node 2 stdout" in text and "mosquitto line" in text
    assert "segment bytes" not in text
    assert broker_log_tails(tmp_path / "none") == f"(no broker log under {tmp_path / 'none'})"


def test_a_failed_start_prints_them_and_still_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _state(tmp_path)
    with pytest.raises(RuntimeError, match="kafka node 1 exited"), broker_logs_on_failure(state):
        raise RuntimeError("kafka node 1 exited during start-up")
    assert "server line 99" in capsys.readouterr().err
    with broker_logs_on_failure(state):
        pass
    assert capsys.readouterr().err == ""
