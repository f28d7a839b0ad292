"""kill -9 of the erasure worker in the middle of an erasure, on the real brokers with a real
edge agent: after the restart the erasure completes with one receipt, the subject's rows
are gone, the other resident's rows and template are untouched."""

from __future__ import annotations

import sqlite3
import time

import pytest

from edge_agent.pseudonym import pseudonym
from tests.conftest import wait_for
from tests.erasure.conftest import OTHER, RESIDENT, ErasureRig, request, verify_receipt

pytestmark = pytest.mark.e2e


def in_book(rig: ErasureRig, request_id: str) -> bool:
    """The worker accepted the request (its progress row exists): its steps run now."""
    if not rig.rights_db.exists():
        return False
    db = sqlite3.connect(f"file:{rig.rights_db}?mode=ro", uri=True, timeout=5)
    try:
        sql = "SELECT 1 FROM erasure_progress WHERE request_id = ?"
        return db.execute(sql, (request_id,)).fetchone() is not None
    except sqlite3.OperationalError:  # the table is not there yet
        return False
    finally:
        db.close()


def test_kill_9_of_the_erasure_worker_mid_erasure_then_restart_completes_once(
    rig: ErasureRig,
) -> None:
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    rig.enroll(gate, OTHER, "biden.jpg", "CARD-BIDEN-1")
    subject, other = pseudonym(gate.secret, RESIDENT), pseudonym(gate.secret, OTHER)
    rig.apply_policy_and_consent([subject, other])
    rig.start_cloud()
    assert gate.start("agent1").stop() == 0  # offline: the erasure waits for its ack
    mine = rig.send_events(subject, 400, gate)
    theirs = rig.send_events(other, 100, gate, start_seq=1000)
    wait_for(lambda: rig.stored_of(subject) == len(mine) and rig.stored_of(other) == len(theirs),
             120, "stored")  # fmt: skip

    request_id = request(rig, str(gate.folder / "site.secret"), "--wait", "0")
    wait_for(lambda: in_book(rig, request_id), 60, "taken", interval_s=0.02)
    assert rig.erasure is not None
    rig.erasure.kill()  # SIGKILL while the cloud-side steps run
    rig.erasure.wait(30)
    killed_at = time.monotonic()
    rig.erasure = rig.p.start("erasure", "worker", name="erasure")
    wait_for(lambda: rig.status(request_id)["stores_done"], 120, "stores done after restart")
    stores_s = time.monotonic() - killed_at
    assert rig.status(request_id)["devices_pending"] == ["gate-1/cam-1"]

    gate.start("agent2")
    wait_for(lambda: rig.status(request_id)["status"] == "complete", 120, "complete")
    claims = verify_receipt(rig, request_id)["claims"]
    deleted = {(d["where"], d["what"]): d["count"] for d in claims["deletions"]}
    # Nothing missed: every stored row of the subject is gone and accounted for.
    assert rig.stored_of(subject) == 0
    assert deleted[("event_store", "stored events")] == len(mine), deleted
    # Nothing erased that was not the subject's, nothing erased twice.
    assert rig.stored_of(other) == len(theirs)
    listing = gate.gallery()
    assert subject not in listing and other in listing
    log = (rig.audit_dir / "log.jsonl").read_text()
    assert log.count("erasure_completed") == 1
    assert log.count("erasure_requested") >= 1  # a redelivered request may be logged again
    print(f"\nkill -9 after accept: stores done {stores_s:.1f} s after the kill")
