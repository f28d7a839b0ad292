"""A Prometheus for one test: `facegate stack up --with-monitoring` on the session's
stack, on a free port, scraping and evaluating every second, with the project's rules
whose `for:` durations are shortened (the test-only override: the expressions are
the real ones)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, StackHandle, free_ports
from tests.support.edge import cli

RULES = REPO / "deploy" / "prometheus"


def short_rules(into: Path, for_s: int = 2) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for path in RULES.glob("*.yml"):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = f"{for_s}s"
        (into / path.name).write_text(yaml.safe_dump(doc))
    return into


@dataclass
class Prom:
    url: str
    env: dict[str, str]
    state_dir: Path

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as answer:  # noqa: S310
                doc = json.loads(answer.read())
        except urllib.error.HTTPError as exc:  # Prometheus says why in the body
            raise AssertionError(f"{path} {params}: {exc.code} {exc.read()[:500]!r}") from exc
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def firing(self) -> list[dict[str, Any]]:
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["state"] == "firing"]


@pytest.fixture(scope="module")
def prom(running_stack: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    from stream_processor.stack.monitoring.prometheus import Prometheus
    from stream_processor.stack.monitoring.settings import MonitoringSettings

    port = free_ports(1)[0]
    env = {
        **running_stack.env,
        "FACEGATE_PROMETHEUS_PORT": str(port),
        "FACEGATE_PROMETHEUS_SCRAPE_INTERVAL_S": "1",
        "FACEGATE_PROMETHEUS_EVALUATION_INTERVAL_S": "1",
        "FACEGATE_PROMETHEUS_RULES_DIR": str(short_rules(tmp_path_factory.mktemp("rules"))),
    }
    result = cli("stack", "up", "--with-monitoring", env=env)
    assert "prometheus: running pid" in result.stdout, result.stdout
    monitoring = Prometheus(
        running_stack.state_dir,
        MonitoringSettings(port=port, rules_dir=Path(env["FACEGATE_PROMETHEUS_RULES_DIR"])),
    )
    try:
        yield Prom(monitoring.url, env, running_stack.state_dir)
    finally:
        monitoring.down()
