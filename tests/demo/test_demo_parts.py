"""The demo's own parts without brokers: what its summary keeps of a failed step, and how
it reads a gate's state from the agent's real /metrics endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.health import make_server, serve_in_background
from edge_agent.metrics import EdgeMetrics
from stream_processor.cli.demo.run import STEP_LOGS, write_summary
from stream_processor.cli.demo.scene import commands_done, gate_templates
from stream_processor.cli.demo.story import Step
from tests.conftest import free_ports


def test_a_failed_step_keeps_what_it_printed_and_names_its_logs(tmp_path: Path) -> None:
    logs = tmp_path / "run"
    failed = Step("keycard", "card", ok=False, lines=["register_card not carried out by: garage"],
                  facts={"card_opened": False})  # fmt: skip
    fine = Step("console", "console", ok=True, lines=["viewer token: fgt_secret-token"])
    path = tmp_path / "summary.json"
    assert not write_summary(path, [failed, fine], [123], False, [], logs)
    doc = json.loads(path.read_text())
    by_key = {s["key"]: s for s in doc["steps"]}
    assert by_key["keycard"]["detail"] == failed.lines
    assert by_key["keycard"]["logs"] == [str(logs / f"{n}.log") for n in STEP_LOGS["keycard"]]
    assert {"gate-garage", "bridge", "processor"} <= set(STEP_LOGS["keycard"])
    assert doc["logs"] == str(logs)
    # A step that succeeded keeps no lines: the console's hold its sign-in tokens.
    assert "detail" not in by_key["console"] and "fgt_secret" not in path.read_text()


@pytest.fixture
def agent_metrics() -> Iterator[tuple[EdgeMetrics, int]]:
    metrics = EdgeMetrics()
    port = free_ports(1)[0]
    server = make_server("127.0.0.1", port, metrics.registry, lambda: (True, {}))
    serve_in_background(server)
    try:
        yield metrics, port
    finally:
        server.shutdown()
        server.server_close()


def test_the_demo_reads_commands_carried_out_and_templates(
    agent_metrics: tuple[EdgeMetrics, int],
) -> None:
    metrics, port = agent_metrics
    metrics.gallery_templates.set(7)
    assert commands_done(port, "register_card") == 0  # none yet: zero, not unknown
    metrics.commands.labels(type="register_card", status="failed").inc()
    metrics.commands.labels(type="withdraw_consent", status="done").inc(2)
    assert commands_done(port, "register_card") == 0  # neither a failure nor another type
    metrics.commands.labels(type="register_card", status="done").inc()
    assert commands_done(port, "register_card") == 1
    assert commands_done(port, "withdraw_consent") == 2
    assert gate_templates(port) == 7


def test_a_gate_that_does_not_answer_is_unknown_not_zero() -> None:
    port = free_ports(1)[0]  # nothing listens there
    assert commands_done(port, "register_card", timeout_s=1) is None
    assert gate_templates(port, timeout_s=1) is None
