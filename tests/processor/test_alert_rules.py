"""The example alert rules name metrics the processor exports (a renamed metric would
silently never fire)."""

from __future__ import annotations

import re

import pytest
import yaml
from prometheus_client import CollectorRegistry

from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.quarantine import ConsumerMetrics
from tests.conftest import REPO

pytestmark = pytest.mark.unit

RULES = REPO / "deploy" / "prometheus" / "processor.yml"


def test_every_metric_in_the_processor_alert_rules_is_exported() -> None:
    registry = CollectorRegistry()
    ProcessorMetrics(registry)
    ConsumerMetrics(registry)
    exported = set()
    for family in registry.collect():  # labelled metrics have no samples until used
        exported |= (
            {family.name, f"{family.name}_total"} if family.type == "counter" else {family.name}
        )
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert rules
    for rule in rules:
        names = set(re.findall(r"facegate_[a-z_]+", rule["expr"]))
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)
