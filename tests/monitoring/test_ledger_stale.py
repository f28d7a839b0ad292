"""``facegate_processor_ledger_stale`` (a worker paused behind its consent or policy view)
has an alert on exactly that gauge and a panel on the pipeline dashboard."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.unit

METRIC = "facegate_processor_ledger_stale"


def test_the_stale_ledger_gauge_has_an_alert() -> None:
    doc = yaml.safe_load((REPO / "deploy" / "prometheus" / "processor.yml").read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}
    rule = rules["ProcessorLedgerStale"]
    assert rule["expr"].strip() == f"{METRIC} == 1"
    assert rule["labels"]["severity"] == "critical" and rule["for"] == "2m"


def test_the_pipeline_dashboard_shows_the_stale_ledger_gauge() -> None:
    doc = json.loads((REPO / "deploy" / "grafana" / "pipeline-health.json").read_text())
    panels = [p for p in doc["panels"] if any(METRIC in t["expr"] for t in p["targets"])]
    assert [p["title"] for p in panels] == ["Processor: ledger views behind, input paused"]
    grids = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in doc["panels"]]
    assert len(grids) == len(set(grids))  # placed where no other panel is
