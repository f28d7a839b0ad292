"""The consumers' example alert rules name metrics that are exported and consumers that
exist (a renamed metric or consumer would silently never fire)."""

from __future__ import annotations

import re

import pytest
import yaml
from prometheus_client import CollectorRegistry

from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.quarantine import ConsumerMetrics
from tests.conftest import REPO

pytestmark = pytest.mark.unit

RULES = REPO / "deploy" / "prometheus" / "consumers.yml"


def consumers_in_code() -> set[str]:
    """Every consumer name production code gives a ``Quarantine`` or counts the tick under."""
    code = "\n".join(p.read_text() for p in (REPO / "stream_processor").rglob("*.py"))
    used = set(re.findall(r'Quarantine\(\s*"([a-z_]+)"', code))
    return used | set(re.findall(r'outage_retries\.labels\("([a-z_]+)"\)', code))


def test_every_metric_and_consumer_in_the_rules_exists() -> None:
    registry = CollectorRegistry()
    ConsumerMetrics(registry)
    ErasureMetrics(registry)
    exported = set()
    for family in registry.collect():
        exported |= (
            {family.name, f"{family.name}_total"} if family.type == "counter" else {family.name}
        )
    known = consumers_in_code()
    assert {"erasure_requests", "erasure_acks", "erasure_tick", "audit_follower"} <= known
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert rules
    for rule in rules:
        names = set(re.findall(r"facegate_[a-z_]+", rule["expr"]))
        assert names and names <= exported, (rule["alert"], names - exported)
        for consumers in re.findall(r'consumer[!=]~?"([^"]+)"', rule["expr"]):
            assert set(consumers.split("|")) <= known, (rule["alert"], consumers)
