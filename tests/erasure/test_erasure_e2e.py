"""Erasure end to end on the real brokers with real edge agents, run as a user runs it:
``facegate erasure request`` → bridge, processor, erasure worker, gate device → receipt
that ``facegate audit verify`` accepts; then every place the subject's data could be is
looked at."""

from __future__ import annotations

import json
import time

import pytest

from edge_agent.decision import credential, event_maker
from edge_agent.outbox import SqliteOutbox
from edge_agent.pseudonym import pseudonym
from edge_agent.wire import EventKind
from tests.conftest import wait_for
from tests.erasure.conftest import OTHER, RESIDENT, ErasureRig, request, verify_receipt

pytestmark = pytest.mark.e2e


def test_erasure_with_the_edge_online(rig: ErasureRig) -> None:
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    rig.enroll(gate, OTHER, "biden.jpg", "CARD-BIDEN-1")
    subject, other = pseudonym(gate.secret, RESIDENT), pseudonym(gate.secret, OTHER)
    rig.apply_policy_and_consent([subject, other])
    rig.start_cloud()
    gate.start("agent")
    mine = rig.send_events(subject, 20, gate)
    theirs = rig.send_events(other, 10, gate, start_seq=100)
    wait_for(lambda: rig.stored_of(subject) == 20 and rig.stored_of(other) == 10, 120, "stored")
    counted_before = rig.aggregates_total()
    assert subject in gate.gallery()

    t0 = time.monotonic()
    request_id = request(rig, str(gate.folder / "site.secret"), "--wait", "120")
    took = time.monotonic() - t0
    assert rig.status(request_id)["status"] == "complete", rig.erasure_log()
    receipt = verify_receipt(rig, request_id)
    claims = receipt["claims"]
    assert claims["subject"] == subject and claims["scope"]["purposes"] is None
    deleted = {(d["where"], d["what"]): d["count"] for d in claims["deletions"]}
    assert deleted[("event_store", "stored events")] == len(mine)
    assert deleted[("aggregates", "the subject's counts in per-minute aggregates")] == len(mine)
    assert deleted[(f"kafka:{rig.topics.consent}", "consent records (tombstoned)")] >= 1
    assert [(d["gate"], d["device"], d["templates_removed"]) for d in claims["devices"]] == [
        ("gate-1", "cam-1", 1)
    ]
    assert {k["topic"] for k in claims["kafka"]} >= {rig.topics.raw, rig.topics.commands}
    assert all(k["gone_by_ms"] > claims["completed_at_ms"] for k in claims["kafka"])

    # No stored row; the others' rows and the aggregates without the subject.
    assert rig.stored_of(subject) == 0
    assert rig.stored_of(other) == len(theirs)
    assert rig.aggregates_total() == counted_before - len(mine)
    # The ledger forgot the subject (tombstones), the other resident's consent stays.
    assert rig.consent_keys(subject) == []
    assert rig.consent_keys(other) != []
    # The gate: no template, nothing queued of the subject (the ack has left too).
    listing = gate.gallery()
    assert subject not in listing and other in listing
    wait_for(lambda: not any(subject.encode() in p for p in gate.outbox_payloads()), 30, "outbox")
    # Logs of the worker name request ids, never the pseudonym.
    assert subject not in rig.erasure_log()
    print(f"\nrequest → receipt {took:.2f} s (CLI start and polling included)")


def test_erasure_with_the_edge_offline_stays_pending_then_completes(rig: ErasureRig) -> None:
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    rig.enroll(gate, OTHER, "biden.jpg", "CARD-BIDEN-1")
    subject, other = pseudonym(gate.secret, RESIDENT), pseudonym(gate.secret, OTHER)
    rig.apply_policy_and_consent([subject, other])
    rig.start_cloud()
    # The device's first start gives it its persistent session; then it goes offline.
    assert gate.start("agent1").stop() == 0
    rig.send_events(subject, 6, gate)
    wait_for(lambda: rig.stored_of(subject) == 6, 120, "stored")
    # Offline, the device queues key-card events of both residents.
    outbox = SqliteOutbox(gate.outbox)
    now = int(time.time() * 1000)
    outbox.append_many([
        event_maker(gate.identity, "access_control",
                    credential(EventKind.KEY_CARD, subject if i % 2 == 0 else other, None), now)
        for i in range(8)
    ])  # fmt: skip
    outbox.close()
    assert sum(subject.encode() in p for p in gate.outbox_payloads()) == 4

    request_id = request(rig, str(gate.folder / "site.secret"), "--wait", "8")
    # The cloud side is done, the device owes its acknowledgement: pending, visibly.
    wait_for(lambda: rig.status(request_id)["stores_done"], 60, "stores done")
    status = rig.status(request_id)
    assert status["status"] == "pending"
    assert status["devices_pending"] == ["gate-1/cam-1"] and status["devices_acked"] == []
    assert subject not in json.dumps(status)
    text = rig.cli("erasure", "status", request_id).stdout
    assert "pending" in text and "gate-1/cam-1" in text
    receipt = rig.cli("erasure", "receipt", request_id, check=False)
    assert receipt.returncode != 0 and "pending" in receipt.stderr
    assert rig.stored_of(subject) == 0  # the cloud did not wait for the device
    # A worker restart loses nothing: the progress is on disk, not in memory.
    rig.restart_erasure_worker()
    assert rig.status(request_id)["devices_pending"] == ["gate-1/cam-1"]

    gate.start("agent2")  # reconnects: the queued command arrives before any event leaves
    wait_for(lambda: rig.status(request_id)["status"] == "complete", 120, "complete")
    claims = verify_receipt(rig, request_id)["claims"]
    (device,) = claims["devices"]
    assert (device["gate"], device["device"]) == ("gate-1", "cam-1")
    assert (device["templates_removed"], device["outbox_events_purged"]) == (1, 4)
    assert subject not in gate.gallery()
    wait_for(lambda: not any(subject.encode() in p for p in gate.outbox_payloads()), 30, "outbox")
    assert rig.stored_of(subject) == 0
