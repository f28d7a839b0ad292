"""Misspelled ``FACEGATE_…`` variables are refused, and the list of known ones cannot go stale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from edge_agent.errors import FacegateError, InvalidInput
from stream_processor.cli.environment import (
    check_environment,
    known_variables,
    settings_modules,
    unknown_variables,
    variable_for,
)
from stream_processor.cli.handler import translate
from tests.conftest import REPO

pytestmark = pytest.mark.unit

_LITERAL = re.compile(r"FACEGATE_[A-Z0-9_]+")


def test_a_misspelled_variable_is_refused_with_the_closest_name() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_environment({"FACEGATE_KAFKA_PROT": "9092", "FACEGATE_KAFKA_PORT": "9092"})
    message = str(caught.value)
    assert "FACEGATE_KAFKA_PROT (did you mean FACEGATE_KAFKA_PORT?)" in message
    assert "FACEGATE_KAFKA_PORT," not in message  # the right one is not named as unknown
    assert isinstance(caught.value, FacegateError)


def test_every_unknown_variable_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_environment({"FACEGATE_STROE": "sqlite", "FACEGATE_WEB_PROT": "1"})
    assert "FACEGATE_STROE" in str(caught.value) and "FACEGATE_WEB_PROT" in str(caught.value)


def test_known_and_nested_variables_pass() -> None:
    check_environment(
        {
            "FACEGATE_STATE_DIR": "/tmp/x",
            "FACEGATE_EDGE_RECOGNITION__THRESHOLD": "0.55",
            "FACEGATE_EDGE_VIDEO__URI": "rtsp://cam/stream",
            "FACEGATE_PROCESSOR_BATCH_SIZE": "100",
            "FACEGATE_TOPIC_RAW": "raw",
            "FACEGATE_DEBUG": "1",
            "PATH": "/usr/bin",
        }
    )


def test_a_misspelled_nested_section_is_refused() -> None:
    known = known_variables()
    assert unknown_variables({"FACEGATE_EDGE_RECOGNTION__THRESHOLD": "0.5"}, known) == [
        "FACEGATE_EDGE_RECOGNTION__THRESHOLD"
    ]


def _source_files() -> list[Path]:
    files = [REPO / "README.md", *(REPO / "docs").glob("*.md")]
    for package in ("edge_agent", "stream_processor", "benchmarks", "deploy", "tests"):
        files += [
            p for p in (REPO / package).rglob("*")
            if p.suffix in (".py", ".yaml", ".service", ".env") and "target" not in p.parts
        ]  # fmt: skip
    return files


def test_every_variable_the_code_and_readme_name_is_known() -> None:
    """A variable named in code, configs, tests or docs but read by nothing would be refused
    (a test's own knobs are ``FACEGATE_TEST_…``)."""
    known = known_variables()
    named: dict[str, str] = {}
    for path in _source_files():
        for name in _LITERAL.findall(path.read_text(encoding="utf-8", errors="replace")):
            if not name.endswith("_"):  # a prefix such as FACEGATE_BRIDGE_…
                named.setdefault(name, str(path.relative_to(REPO)))
    assert len(named) > 50
    stale = {n: where for n, where in named.items() if unknown_variables({n: ""}, known)}
    # The misspellings that tests/cli and the module's docstring show on purpose.
    for shown in ("FACEGATE_KAFKA_PROT", "FACEGATE_STROE", "FACEGATE_WEB_PROT",
                  "FACEGATE_EDGE_RECOGNTION__THRESHOLD"):  # fmt: skip
        stale.pop(shown, None)
    assert stale == {}


def test_the_test_suites_knobs_pass_through() -> None:
    check_environment({"FACEGATE_TEST_OUTAGE_S": "600", "FACEGATE_FUZZ_EXAMPLES": "5000"})


def test_every_settings_class_is_found() -> None:
    """A settings class outside the discovered modules would make its variables 'unknown'."""
    modules = set(settings_modules())
    known_variables()  # imports them
    defining = re.compile(r"^class \w+\((?:BaseSettings|\w+Settings)\):", re.M)
    for package in ("edge_agent", "stream_processor"):
        for path in (REPO / package).rglob("*.py"):
            if defining.search(path.read_text(encoding="utf-8")):
                name = ".".join(path.relative_to(REPO).with_suffix("").parts)
                assert name in modules, f"{name} defines settings but is not discovered"
    classes: list[type[BaseSettings]] = []
    todo = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith(("edge_agent", "stream_processor")):
            classes.append(cls)
    assert {c.__module__ for c in classes} <= modules
    assert len(classes) >= 10


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream_processor.runtime.settings import BrokerSettings

    monkeypatch.setenv("FACEGATE_KAFKA_PORT", "-1")
    with pytest.raises(ValidationError) as caught:
        BrokerSettings()
    assert variable_for("BrokerSettings", ("kafka_port",)) == "FACEGATE_KAFKA_PORT"
    assert variable_for("EdgeConfig", ("recognition", "threshold")) == (
        "FACEGATE_EDGE_RECOGNITION__THRESHOLD"
    )
    message, code = translate(caught.value)
    assert code == 1
    assert message.startswith("invalid BrokerSettings: FACEGATE_KAFKA_PORT: ")
    assert "(got '-1')" in message and "\n" not in message
