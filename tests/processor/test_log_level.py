"""``FACEGATE_LOG_LEVEL`` on a processor worker, on the real brokers: its INFO lines
appear at INFO (and at DEBUG, which shows everything), and at DEBUG a run that applies
a policy, takes consents and a withdrawal, and stores and refuses face events logs no
pseudonym (a privacy red line: pseudonyms never reach a log)."""

from __future__ import annotations

import re

import pytest

from edge_agent.wire.events import PSEUDONYM_PATTERN
from stream_processor.policy.consent import ConsentStatus
from tests.conftest import wait_for
from tests.support.processor import BASE_POLICY, TENANT, Harness, grant_record, make_event, subject

pytestmark = pytest.mark.component

#: Any pseudonym, anywhere in a line (the pattern without its anchors).
ANY_PSEUDONYM = re.compile(PSEUDONYM_PATTERN.strip("^$"))


@pytest.mark.parametrize("store_kind", ["sqlite"])
@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_the_worker_logs_at_the_level_set_and_never_a_pseudonym(
    harness: Harness, level: str
) -> None:
    import msgspec

    h = harness
    h.p.extra_env["FACEGATE_LOG_LEVEL"] = level.lower()  # any case is taken
    h.apply_policy(BASE_POLICY)
    h.send_consents([grant_record(i) for i in (1, 2)])
    events = [make_event(subject_id=i % 4, seq=n) for n, i in enumerate(range(12))]
    h.send_events(events)
    worker = h.p.start("processor", "worker", name="p1")
    stored = [e for e in events if e.subject in {subject(1), subject(2)}]
    wait_for(lambda: h.count() == len(stored), 90, "the consenting residents' events stored")
    withdrawal = msgspec.structs.replace(
        grant_record(1), status=ConsentStatus.WITHDRAWN, evidence_ref=None
    )
    h.send_consents([withdrawal])
    wait_for(lambda: "consent withdrawn at" in h.p.log("p1"), 60, "the withdrawal logged")
    worker.terminate()
    worker.wait(60)
    log = h.p.log("p1")
    # mode's format: [time] [pid] [LEVEL] message
    infos = [ln for ln in log.splitlines() if "[INFO]" in ln]
    assert any(f"policy v1 of {TENANT} in force" in ln for ln in infos), log[-2000:]
    assert any("consent withdrawn at acme/site-1" in ln for ln in infos), log[-2000:]
    debugs = [ln for ln in log.splitlines() if "[DEBUG]" in ln]
    assert bool(debugs) is (level == "DEBUG"), debugs[:3]
    found = ANY_PSEUDONYM.findall(log)
    assert found == [], f"pseudonyms in the {level} log: {sorted(set(found))[:3]}"
    assert all(subject(i) not in log for i in range(4))
