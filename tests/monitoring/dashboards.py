"""The Grafana dashboards the project ships (deploy/grafana/), read the way Grafana
reads them: each panel's queries, with Grafana's variables filled in for Prometheus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import REPO

DASHBOARDS = sorted((REPO / "deploy" / "grafana").glob("*.json"))
#: The pipeline dashboard's panel of the processor's look at the ledgers' end offsets.
LOOK_PANEL = "Processor: ledger gate look (p50, p99)"
#: What Grafana puts in place of its variables before it sends a query.
SUBSTITUTE = {"$__rate_interval": "1m", "$__interval": "1m", "$tenant": ".*"}


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every panel target."""
    found = []
    for path in DASHBOARDS:
        doc = load(path)
        for panel in doc["panels"]:
            for target in panel["targets"]:
                found.append((doc["uid"], panel["title"], target["expr"]))
    return found


def panel_queries(uid: str, title: str) -> list[str]:
    """The PromQL one panel sends, variables filled; [] when there is no such panel."""
    return [to_promql(e) for u, t, e in queries() if (u, t) == (uid, title)]


def to_promql(expr: str) -> str:
    for variable, value in SUBSTITUTE.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr  # a variable Grafana would fill that the test does not know
    return expr
