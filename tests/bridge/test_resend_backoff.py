"""No re-send storm, on the real brokers: with the bridge stopped Mosquitto keeps
acknowledging a gate's events but no confirmation comes; the gate's re-send rounds
back off and each re-publishes a bounded window, so over ~30 s it publishes a small
multiple of its backlog (go-back-N every timeout would be one full copy per round).
When the bridge returns every event is stored exactly once and confirmed."""

from __future__ import annotations

import threading
import time

import msgspec
import pytest

from edge_agent.outbox import SqliteOutbox
from edge_agent.uplink.publisher import OutboxPublisher
from tests.bridge.conftest import BridgeRig, events_for
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

BACKLOG = 3000
OUTAGE_S = 30.0
#: Short timeout and cap so the outage spans several rounds; the window is a sixth
#: of the backlog, so each round re-publishes far less than the whole of it.
TIMEOUT_S, CAP_S, WINDOW = 2.0, 8.0, 500


def test_a_stalled_cloud_gets_a_bounded_number_of_re_sends_and_loses_nothing(
    rig: BridgeRig,
) -> None:
    rig.apply_policy()
    rig.prepare_session()  # the bridge's persistent session queues while it is down
    rig.p.start("processor", "worker", name="processor")
    conn = rig.device("site-r1")
    outbox = SqliteOutbox(rig.p.tmp / "outbox.sqlite")
    made = events_for("site-r1", BACKLOG)
    events = outbox.append_many(
        [lambda seq, e=e: msgspec.structs.replace(e, seq=seq) for e in made]
    )
    settings = conn.mqtt.model_copy(
        update={
            "confirm_timeout_s": TIMEOUT_S, "resend_backoff_cap_s": CAP_S,
            "resend_window": WINDOW,
        }
    )  # fmt: skip
    pub = OutboxPublisher(outbox, conn.identity, settings)
    assert pub.confirmations is not None
    stop = threading.Event()
    runner = threading.Thread(target=pub.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_for(lambda: outbox.unconfirmed() == BACKLOG, 60, "the backlog acknowledged")
        time.sleep(OUTAGE_S)
        during = pub.published
        rounds = pub.confirmations.resends
        # Re-sent, but backed off: timeout 2 s doubling to 8 s is 5 rounds in 30 s
        # at most (go-back-N each 2 s would be ~14 copies of the backlog).
        assert rounds >= 3, "the gate did not re-send at all"
        assert during <= BACKLOG + (rounds + 1) * WINDOW + settings.window
        assert during <= 3 * BACKLOG
        assert rig.count(rig.p.topics().raw) == 0  # nothing confirmed could have been
        rig.start_bridge()
        wait_for(lambda: outbox.depth() == 0, 180, "the outbox confirmed empty")
        wait_for(lambda: len(rig.stored_ids()) >= BACKLOG, 180, "every event stored")
        time.sleep(3)  # a duplicate row would show up now
    finally:
        stop.set()
        runner.join(30)
    stored = rig.stored_ids()
    assert len(stored) == len(set(stored)) == BACKLOG
    assert set(stored) == {e.event_id for e in events}
    assert pub.confirmations.confirmed == BACKLOG and pub.refused == 0
    print(
        f"\n{during} packets for {BACKLOG} events in a {OUTAGE_S:.0f} s stall,"
        f" {rounds} re-send round(s); {rig.count(rig.p.topics().raw) - BACKLOG}"
        " duplicates in Kafka"
    )
