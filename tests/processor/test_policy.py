"""Policies on the real brokers, both stores: applied at run time, dry run = sweep,
no row past its deadline after a sweep, ceiling refused, purposes enforced."""

from __future__ import annotations

import copy
import re
import time

import pytest

from tests.conftest import wait_for
from tests.support.processor import BASE_POLICY, TENANT, Harness, grant_record, make_event

pytestmark = pytest.mark.component

HOUR = 3_600_000
DAY = 24 * HOUR


def by_site_kind(h: Harness) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for e in h.store().all_events():
        out[(e.site, e.kind)] = out.get((e.site, e.kind), 0) + 1
    return out


def parse_dry_run(text: str) -> dict[tuple[str, str], int]:
    return {
        (m[1], m[2]): int(m[3]) for m in re.finditer(r"^  (site-\S+)\t(\w+)\t(\d+)$", text, re.M)
    }


def test_policy_applied_at_run_time_and_dry_run_equals_sweep(harness: Harness) -> None:
    h = harness
    h.p.start("processor", "worker", name="p1")
    now = int(time.time() * 1000)
    h.send_consents([grant_record(i, site=s) for i in range(5) for s in ("site-1", "site-2")])

    # No policy yet: nothing is stored, every event is counted as no_policy.
    early = [make_event("key_card", subject_id=1, seq=i) for i in range(5)]
    h.send_events(early)
    wait_for(lambda: sum(h.store().aggregates(TENANT, 0).values()) >= 5, 60, "no_policy counted")
    assert h.count() == 0
    assert {k.outcome for k in h.store().aggregates(TENANT, 0)} == {"no_policy"}

    # v1 applied while the worker runs: in force within seconds of the command's return
    # (the command's own run, a Python start on a loaded machine, is not the policy's).
    t0 = time.monotonic()
    h.apply_policy(BASE_POLICY)
    applied = time.monotonic()
    probe = make_event("pin", subject_id=1, seq=99)

    def probe_stored() -> bool:
        h.send_events([make_event("pin", subject_id=1, seq=98)]) if h.count() == 0 else None
        return h.count() > 0

    wait_for(probe_stored, 30, "v1 in force")
    in_force_s = time.monotonic() - applied
    assert in_force_s < 15, (
        f"policy took {in_force_s:.1f}s to take effect after 'policy apply' returned"
        f" (the command ran {applied - t0:.1f}s); worker log:\n{h.p.log('p1')[-3000:]}"
    )
    h.send_events([probe])

    # Old and new events at two sites (all within v1's 30d / 90d rules).
    events = []
    for site in ("site-1", "site-2"):
        for age in (2 * DAY, 10 * DAY, HOUR):
            for i in range(5):
                events.append(make_event("face_match", subject_id=i, site=site,
                                         occurred_at_ms=now - age - i))  # fmt: skip
                events.append(make_event("key_card", subject_id=i, site=site,
                                         occurred_at_ms=now - age - i))  # fmt: skip
    h.send_events(events)
    total = 2 + len(events)
    wait_for(lambda: h.count() >= total, 60, "all events stored")
    before = by_site_kind(h)

    # v2 shortens face matches at site-1 to 1d and key cards everywhere to 5d.
    v2 = copy.deepcopy(BASE_POLICY)
    v2["retention"]["key_card"] = {"access_control": "5d"}
    v2["sites"] = {"site-1": {"retention": {"face_match": {"access_control": "1d"}}}}
    dry = parse_dry_run(h.apply_policy(v2, "--dry-run"))
    assert dry == {
        ("site-1", "face_match"): 10,
        ("site-1", "key_card"): 5,
        ("site-2", "key_card"): 5,
    }
    assert h.count() == total  # a dry run changes nothing
    out = h.apply_policy(v2, "--comment", "shorter")
    assert parse_dry_run(out) == dry

    def swept() -> bool:
        after = by_site_kind(h)
        gone = {k: before[k] - after.get(k, 0) for k in before}
        return {k: n for k, n in gone.items() if n} == dry

    wait_for(swept, 30, "the sweep deletes exactly what the dry run counted")

    # After the sweep no stored row is past its deadline under the rule in force.
    rules = {("site-1", "face_match"): DAY, ("site-2", "face_match"): 30 * DAY}
    now = int(time.time() * 1000)
    for e in h.store().all_events():
        rule = rules.get((e.site, e.kind), 5 * DAY if e.kind == "key_card" else 90 * DAY)
        assert e.occurred_at_ms > now - rule
        assert e.expires_at_ms > now

    # The raw and dead-letter topics' retention follows the policy's transport section.
    def raw_topic_configs() -> dict[str, str]:
        from kafka.admin import ConfigResource, ConfigResourceType

        from tests.support.kafka import admin_client

        admin = admin_client(h.bootstrap)
        try:
            res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, h.topics.raw)])
            return {c[0]: c[1] for c in res[0].resources[0][4]}
        finally:
            admin.close()

    wait_for(
        lambda: raw_topic_configs().get("retention.ms") == str(DAY), 30, "raw retention from policy"
    )
    assert raw_topic_configs()["segment.ms"] == str(DAY // 10)

    hist = h.cli("policy", "history", "--tenant", TENANT).stdout.splitlines()
    assert [line.split("\t")[0] for line in hist] == ["v1", "v2"]
    assert hist[1].endswith("shorter")
    shown = h.cli("policy", "show", "--tenant", TENANT).stdout
    assert shown.startswith(f"# {TENANT} policy v2") and "5d" in shown


def test_a_rule_above_the_legal_ceiling_is_refused(harness: Harness) -> None:
    h = harness
    bad = copy.deepcopy(BASE_POLICY)
    bad["retention"]["key_card"] = {"access_control": "4y"}
    path = h.p.tmp / "bad.yaml"
    import yaml

    path.write_text(yaml.safe_dump(bad))
    res = h.cli("policy", "validate-config", str(path), check=False)
    assert res.returncode != 0 and "exceeds the legal ceiling" in res.stderr
    res = h.cli("policy", "apply", str(path), check=False)
    assert res.returncode != 0
    assert h.read_topic(h.topics.policies, 1.0) == []  # nothing was written

    public = copy.deepcopy(BASE_POLICY)
    public["purposes"]["public_security"] = {"description": "watch everybody, just in case"}
    path.write_text(yaml.safe_dump(public))
    res = h.cli("policy", "validate-config", str(path), check=False)
    assert res.returncode != 0 and "catch-all" in res.stderr


def test_purpose_not_allowed_at_camera_is_discarded_and_counted(harness: Harness) -> None:
    h = harness
    doc = copy.deepcopy(BASE_POLICY)
    doc["retention"]["key_card"]["parcel_delivery"] = "7d"
    doc["sites"] = {"site-1": {"cameras": {"gate-2": ["parcel_delivery"]}}}
    h.apply_policy(doc)
    h.p.start("processor", "worker", name="p1")
    allowed = make_event("key_card", gate="gate-2", purpose="parcel_delivery", seq=1)
    refused = [
        make_event("key_card", gate="gate-1", purpose="parcel_delivery", seq=2),
        make_event("key_card", gate="gate-2", purpose="access_control", seq=3),
        make_event("key_card", gate="gate-1", purpose="marketing", seq=4),
    ]
    h.send_events([allowed, *refused])
    wait_for(lambda: sum(h.store().aggregates(TENANT, 0).values()) >= 4, 60, "all counted")
    assert [e.event_id for e in h.store().all_events()] == [allowed.event_id]
    outcomes = {(k.gate, k.outcome): n for k, n in h.store().aggregates(TENANT, 0).items()}
    assert outcomes == {
        ("gate-2", "stored"): 1,
        ("gate-1", "purpose_not_allowed_at_camera"): 1,
        ("gate-2", "purpose_not_allowed_at_camera"): 1,
        ("gate-1", "purpose_not_declared"): 1,
    }
