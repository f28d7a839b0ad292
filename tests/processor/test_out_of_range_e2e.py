"""Out-of-range numbers on the real brokers and PostgreSQL (BIGINT columns), with a worker
process: an event with ``seq`` 2**64 or a time past 2**63 on the raw topic, a policy
version numbered 2**64 and a consent grant dated 2**64 on the ledgers (a hostile or
careless office writing them by hand, before the worker starts: its start-up snapshot
of each ledger ends with them). Each bad record is in the DLQ with its reason; the
policy and the consent in force stay what they were; every good event after them is
stored, exactly once; the worker never exits. (A gate's 2**64 through MQTT and the
bridge: ``tests/e2e/test_hostile_gate.py``.)"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from stream_processor.dead_letter import decode_dead_letter
from stream_processor.policy.keys import policy_key
from stream_processor.processor.ledger import LedgerRefusal, read_consent
from tests.conftest import wait_for
from tests.processor.service_rig import as_json
from tests.support.processor import BASE_POLICY, TENANT, Harness, grant_record, make_event

pytestmark = pytest.mark.component

GOOD = 200
DAY_MS = 86_400_000


def hostile_ledger_records(h: Harness) -> dict[str, tuple[bytes, bytes]]:
    """Ledger records out of range, each under a key its fields would give."""
    current = {k: v for k, v in h.read_topic(h.topics.policies) if k == policy_key(TENANT)}
    doc = json.loads(current[policy_key(TENANT)])
    # Were it taken, key cards would no longer be stored: retention 0.
    doc["document"]["retention"]["key_card"] = {"access_control": 0}
    policy = json.dumps({**doc, "version": 2**64}).encode()
    grant = json.loads(grant_record(1).encode())
    consent = json.dumps({**grant, "at_ms": 2**64}).encode()
    return {
        "policy": (policy_key(TENANT), policy),
        "consent": (grant_record(1).key, consent),
    }


@pytest.mark.parametrize("store_kind", ["postgres"], indirect=True)
def test_out_of_range_numbers_are_dead_lettered_and_good_records_stored(h: Harness) -> None:
    h.apply_policy(BASE_POLICY)
    now = int(time.time() * 1000)
    hostile = hostile_ledger_records(h)
    consent_refusal = read_consent(*hostile["consent"])
    assert isinstance(consent_refusal, LedgerRefusal)
    prod = h.producer()
    prod.send(h.topics.policies, key=hostile["policy"][0], value=hostile["policy"][1])
    prod.send(h.topics.consent, key=hostile["consent"][0], value=hostile["consent"][1])
    prod.flush(30)
    # Started after them: its start-up snapshot of each ledger ends with a refused record.
    worker = h.p.start("processor", "worker", name="p1")

    base = as_json(make_event("key_card", subject_id=3, seq=1, occurred_at_ms=now))
    poison: list[bytes] = [
        json.dumps({**base, "seq": 2**64}).encode(),
        json.dumps({**base, "seq": 2**63}).encode(),
        json.dumps({**base, "occurred_at_ms": 2**63}).encode(),
        json.dumps({**base, "seq": -1}).encode(),
    ]
    good = [make_event("key_card", subject_id=i % 20, seq=100 + i) for i in range(GOOD)]
    # Subject 1's only grant is the refused one: its face is never stored.
    unconsented = make_event("face_match", subject_id=1, seq=99)
    for value in poison:
        prod.send(h.topics.raw, key=b"acme/site-1", value=value)
    h.send_events([unconsented, *good])

    wait_for(lambda: h.count() >= GOOD, 120, "every good event stored")

    def letters() -> list[Any]:
        return [decode_dead_letter(v) for _, v in h.read_topic(h.topics.dlq, timeout_s=5)]

    wait_for(lambda: len(letters()) >= len(poison) + 2, 60, "every bad record dead-lettered")
    time.sleep(2)  # a late duplicate or extra letter would show now
    got = letters()
    assert Counter((x.source_topic, x.reason) for x in got) == Counter(
        {
            (h.topics.raw, "out_of_range"): len(poison),
            (h.topics.policies, "invalid_policy"): 1,
            (h.topics.consent, consent_refusal.reason): 1,
        }
    ), got
    ids = list(h.store().iter_event_ids())
    assert len(ids) == len(set(ids)) == GOOD
    assert set(ids) == {e.event_id for e in good}
    # Stored under the version in force (key cards 90 days), not the refused one.
    row = h.store().get(good[-1].event_id)
    assert row is not None and row.expires_at_ms is not None
    assert row.expires_at_ms - row.stored_at_ms > 80 * DAY_MS
    assert worker.poll() is None, h.p.log("p1")
    assert "Traceback" not in h.p.log("p1")


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness
