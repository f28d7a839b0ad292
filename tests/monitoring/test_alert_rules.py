"""The alert rules in deploy/prometheus/ are valid, each has a promtool unit test that
makes it fire, and every metric they name is one the code exports."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from stream_processor.runtime.system import require_binary
from tests.conftest import REPO
from tests.monitoring.names import SCRAPE_SERIES, exported_metric_names, metric_names_in

pytestmark = pytest.mark.unit

RULES_DIR = REPO / "deploy" / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.test.yml"))

#: What issue 16 asks the rules to catch, and the alert that does.
REQUIRED = {
    "gate offline": "GateOffline",
    "outbox growing": "GateOutboxGrowing",
    "dead-letter rate": "DeadLetterRate",
    "erasure overdue": "ErasureOverdue",
    "retention overdue": "RetentionOverdue",
    "consumer lag": "ConsumerLag",
    "key-card request ageing": "KeyCardRequestWaiting",
    "witness fork": "AuditLogForked",
    "certificate expiry": "CertificateExpiry",
    "processor ledger view stale (input paused)": "ProcessorLedgerStale",
}


def _promtool() -> str:
    return require_binary("promtool", "prometheus")


def _rules() -> list[dict[str, str]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_promtool_checks_every_rule_file() -> None:
    assert RULE_FILES
    result = subprocess.run(
        [_promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert TEST_FILES
    result = subprocess.run(
        [_promtool(), "test", "rules", *map(str, TEST_FILES)],
        capture_output=True, text=True, check=False, cwd=RULES_DIR / "tests",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES), result.stdout


def _fired_in_unit_tests() -> set[str]:
    fired = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    return fired


def test_every_alert_has_a_unit_test_that_makes_it_fire() -> None:
    alerts = {rule["alert"] for rule in _rules()}
    assert set(REQUIRED.values()) <= alerts, set(REQUIRED.values()) - alerts
    assert alerts <= _fired_in_unit_tests(), alerts - _fired_in_unit_tests()


def test_every_unit_test_file_loads_a_rule_file_that_exists() -> None:
    covered = set()
    for path in TEST_FILES:
        for name in yaml.safe_load(path.read_text())["rule_files"]:
            target = (path.parent / name).resolve()
            assert target.exists(), (path.name, name)
            covered.add(target)
    assert covered == {p.resolve() for p in RULE_FILES}


def test_every_metric_the_rules_name_is_exported_by_the_code() -> None:
    exported = exported_metric_names() | SCRAPE_SERIES
    for rule in _rules():
        names = metric_names_in(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)


#: Labels a rule may group by or print: sets bounded by deployment, never by person.
BOUNDED_LABELS = {
    "job", "instance", "tenant", "site", "topic", "partition", "reason", "consumer",
    "cert", "result", "kind", "outcome",
}


def test_rules_group_and_print_only_bounded_labels() -> None:
    for rule in _rules():
        used = set()
        for group in re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"]):
            used |= {label.strip() for label in group.split(",")}
        used |= set(re.findall(r"\$labels\.(\w+)", str(rule.get("annotations", ""))))
        assert used <= BOUNDED_LABELS, (rule["alert"], used - BOUNDED_LABELS)
