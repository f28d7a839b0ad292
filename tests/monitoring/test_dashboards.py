"""The Grafana dashboards in deploy/grafana/: well formed, every query names only
metrics the code exports and groups by bounded labels, and every query (and template
variable) evaluates without error in the running Prometheus through its HTTP API."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import REPO
from tests.monitoring.names import SCRAPE_SERIES, exported_metric_names, metric_names_in
from tests.monitoring.prom import Prom

DASHBOARDS = sorted((REPO / "deploy" / "grafana").glob("*.json"))
REQUIRED = {"facegate-firm", "facegate-pipeline", "facegate-rights-sla"}
BOUNDED_LABELS = {
    "job", "instance", "tenant", "site", "topic", "partition", "reason", "consumer",
    "cert", "result", "kind", "outcome", "decision", "status", "le",
}
#: What Grafana puts in place of its variables before it sends a query.
SUBSTITUTE = {"$__rate_interval": "1m", "$__interval": "1m", "$tenant": ".*"}


def _load(path: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every panel target."""
    found = []
    for path in DASHBOARDS:
        doc = _load(path)
        for panel in doc["panels"]:
            for target in panel["targets"]:
                found.append((doc["uid"], panel["title"], target["expr"]))
    return found


def _grafana_to_promql(expr: str) -> str:
    for variable, value in SUBSTITUTE.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr  # a variable Grafana would fill that the test does not know
    return expr


@pytest.mark.unit
def test_the_three_dashboards_are_well_formed() -> None:
    uids = {_load(p)["uid"] for p in DASHBOARDS}
    assert uids == REQUIRED
    for path in DASHBOARDS:
        doc = _load(path)
        variables = {v["name"]: v for v in doc["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)) and ids, path.name
        for panel in doc["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (path.name, panel["title"])
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["expr"].strip() and target["datasource"]["uid"] == "${datasource}"


@pytest.mark.unit
def test_every_query_names_only_metrics_the_code_exports() -> None:
    exported = exported_metric_names() | SCRAPE_SERIES
    for uid, title, expr in _queries():
        names = metric_names_in(expr)
        assert names, (uid, title)
        assert names <= exported, (uid, title, names - exported)


@pytest.mark.unit
def test_queries_group_and_show_only_bounded_labels() -> None:
    for path in DASHBOARDS:
        for panel in _load(path)["panels"]:
            for target in panel["targets"]:
                used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
                for group in re.findall(r"\bby\s*\(([^)]*)\)", target["expr"]):
                    used |= {label.strip() for label in group.split(",")}
                assert used <= BOUNDED_LABELS, (panel["title"], used - BOUNDED_LABELS)


@pytest.mark.e2e
def test_every_query_evaluates_in_the_running_prometheus(prom: Prom) -> None:
    queries = _queries()
    assert len(queries) >= 30
    for _uid, _title, expr in queries:
        # An error (bad syntax, a function misused, a type mismatch) fails the request.
        prom.get("/api/v1/query", query=_grafana_to_promql(expr))
    for path in DASHBOARDS:
        for variable in _load(path)["templating"]["list"]:
            definition = variable.get("definition", "")
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", definition)
            if variable["type"] == "query":
                assert match, (path.name, variable["name"])
                metric, label = match.groups()
                assert metric in exported_metric_names()
                values = prom.get(f"/api/v1/label/{label}/values", **{"match[]": metric})
                assert isinstance(values, list)
