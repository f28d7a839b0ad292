"""The Grafana dashboards in deploy/grafana/: well formed, every query names only
metrics the code exports and groups by bounded labels, and every query (and template
variable) evaluates without error in the running Prometheus through its HTTP API."""

from __future__ import annotations

import re

import pytest

from tests.monitoring.dashboards import DASHBOARDS, LOOK_PANEL, load, queries, to_promql
from tests.monitoring.names import SCRAPE_SERIES, exported_metric_names, metric_names_in
from tests.monitoring.prom import Prom

LOOK = "facegate_processor_ledger_look_seconds"
REQUIRED = {"facegate-firm", "facegate-pipeline", "facegate-rights-sla"}
BOUNDED_LABELS = {
    "job", "instance", "tenant", "site", "topic", "partition", "reason", "consumer",
    "cert", "result", "kind", "outcome", "decision", "status", "le",
}


@pytest.mark.unit
def test_the_three_dashboards_are_well_formed() -> None:
    uids = {load(p)["uid"] for p in DASHBOARDS}
    assert uids == REQUIRED
    for path in DASHBOARDS:
        doc = load(path)
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
    for uid, title, expr in queries():
        names = metric_names_in(expr)
        assert names, (uid, title)
        assert names <= exported, (uid, title, names - exported)


@pytest.mark.unit
def test_the_ledger_gate_look_is_shown_beside_the_processor_ledger_panel() -> None:
    """The worker's look at the ledgers' end offsets (a histogram in the code): its
    p50 and p99 in seconds, on the processor's ledger row of the pipeline dashboard."""
    [path] = [p for p in DASHBOARDS if load(p)["uid"] == "facegate-pipeline"]
    panels = load(path)["panels"]
    showing = [p for p in panels if any(LOOK in t["expr"] for t in p["targets"])]
    assert [p["title"] for p in showing] == [LOOK_PANEL]
    [panel] = showing
    assert f"{LOOK}_bucket" in exported_metric_names()  # only a Histogram has one
    for target, quantile in zip(panel["targets"], ("0.5", "0.99"), strict=True):
        assert metric_names_in(target["expr"]) == {f"{LOOK}_bucket"}
        assert target["expr"].startswith(f"histogram_quantile({quantile}, sum by (le) (rate(")
    assert panel["fieldConfig"]["defaults"]["unit"] == "s"
    [stale] = [p for p in panels if p["title"].startswith("Processor: ledger views behind")]
    assert panel["gridPos"]["y"] == stale["gridPos"]["y"]  # the same row, side by side
    assert {panel["gridPos"]["x"], stale["gridPos"]["x"]} == {0, 12}


@pytest.mark.unit
def test_queries_group_and_show_only_bounded_labels() -> None:
    for path in DASHBOARDS:
        for panel in load(path)["panels"]:
            for target in panel["targets"]:
                used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
                for group in re.findall(r"\bby\s*\(([^)]*)\)", target["expr"]):
                    used |= {label.strip() for label in group.split(",")}
                assert used <= BOUNDED_LABELS, (panel["title"], used - BOUNDED_LABELS)


@pytest.mark.e2e
def test_every_query_evaluates_in_the_running_prometheus(prom: Prom) -> None:
    found = queries()
    assert len(found) >= 32
    for _uid, _title, expr in found:
        # An error (bad syntax, a function misused, a type mismatch) fails the request.
        prom.get("/api/v1/query", query=to_promql(expr))
    for path in DASHBOARDS:
        for variable in load(path)["templating"]["list"]:
            definition = variable.get("definition", "")
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", definition)
            if variable["type"] == "query":
                assert match, (path.name, variable["name"])
                metric, label = match.groups()
                assert metric in exported_metric_names()
                values = prom.get(f"/api/v1/label/{label}/values", **{"match[]": metric})
                assert isinstance(values, list)
