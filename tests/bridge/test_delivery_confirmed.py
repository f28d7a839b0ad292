"""Delivery confirmed back to the gate, on the real brokers: Mosquitto killed with
SIGKILL (its persistence saved every 30 s) in the middle of 50,000 events from gate
outboxes; what it had acknowledged but not saved is re-sent when no confirmation
comes, and every event is stored exactly once."""

from __future__ import annotations

import threading
import time
from typing import Any

import msgspec
import pytest

from edge_agent.outbox import SqliteOutbox
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.wire import encode_event
from tests.bridge.conftest import BridgeRig, events_for
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

N = 50_000
DEVICES = 2
#: Short, so the test does not wait long for the re-send (the default is 30 s).
CONFIRM_TIMEOUT_S = 5.0


def queued_device(rig: BridgeRig, site: str, n: int) -> tuple[Any, SqliteOutbox, list[Any]]:
    conn = rig.device(site)
    outbox = SqliteOutbox(rig.p.tmp / f"outbox-{site}.sqlite")
    events: list[Any] = []
    for start in range(0, n, 5000):
        made = events_for(site, min(5000, n - start))
        events += outbox.append_many(
            [lambda seq, e=e: msgspec.structs.replace(e, seq=seq) for e in made]
        )
    return conn, outbox, events


def test_kill_9_mosquitto_mid_50k_every_event_stored_exactly_once(rig: BridgeRig) -> None:
    from stream_processor.stack.mosquitto import Mosquitto

    rig.apply_policy()
    rig.prepare_session()
    gates = [queued_device(rig, f"site-c{i}", N // DEVICES) for i in range(DEVICES)]
    sent = {e.event_id for _, _, events in gates for e in events}
    assert len(sent) == N
    rig.p.start("processor", "worker", name="processor")
    rig.start_bridge()
    stop = threading.Event()
    publishers = []
    for conn, outbox, _ in gates:
        settings = conn.mqtt.model_copy(update={"confirm_timeout_s": CONFIRM_TIMEOUT_S})
        pub = OutboxPublisher(outbox, conn.identity, settings)
        threading.Thread(target=pub.run, args=(stop,), daemon=True).start()
        publishers.append(pub)
    raw = rig.p.topics().raw
    try:
        wait_for(lambda: rig.count(raw) >= N // 4, 180, "a quarter of the events in Kafka")
        unconfirmed = sum(outbox.unconfirmed() for _, outbox, _ in gates)
        broker = Mosquitto(rig.settings)
        broker.kill()  # SIGKILL: whatever it acknowledged since its last save is gone
        at_kill = rig.count(raw)
        time.sleep(1)
        broker.up()  # the same persistence file
        assert at_kill < N, "killed too late to prove anything"
        wait_for(
            lambda: all(outbox.depth() == 0 for _, outbox, _ in gates), 300,
            "every gate's outbox confirmed empty",
        )  # fmt: skip
        wait_for(lambda: len(rig.stored_ids()) >= N, 300, "every event stored")
        time.sleep(3)  # a duplicate row would show up now
    finally:
        stop.set()
    stored = rig.stored_ids()
    assert len(stored) == len(set(stored)) == N
    assert set(stored) == sent
    assert rig.count(rig.p.topics().dlq) == 0
    assert sum(p.refused for p in publishers) == 0
    confirmed = sum(p.confirmations.confirmed for p in publishers if p.confirmations)
    assert confirmed == N  # each row left the outbox by a confirmation, none otherwise
    resends = sum(p.confirmations.resends for p in publishers if p.confirmations)
    print(
        f"\nkilled with {at_kill} in Kafka and {unconfirmed} acknowledged but unconfirmed;"
        f" {resends} re-send round(s); {rig.count(raw) - N} duplicates in Kafka"
    )


def _publish_once(m: Any, topic: str, payload: bytes) -> int:
    """Publish one QoS 1 message on a fresh MQTT v5 connection; the PUBACK's reason code."""
    import paho.mqtt.client as mqtt

    codes: list[int] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(m.username, m.password.get_secret_value())

    def on_publish(c: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        codes.append(rc.value)
        done.set()

    client.on_publish = on_publish
    client.connect(m.host, m.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        assert done.wait(30), "no PUBACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def test_a_gate_cannot_confirm_for_another_gate(rig: BridgeRig) -> None:
    """Only the bridge may write a confirms topic: a hostile gate's forged confirmations
    for its neighbour are refused by the broker (PUBACK 135), so they never reach it
    (and a gate ignores a confirmation naming another device: test_confirmations)."""

    from tests.support.edge import confirmation_of

    victim, victim_outbox, events = queued_device(rig, "site-v", 20)
    hostile = rig.device("site-v", device="cam-evil")
    victim_outbox.mark_sent([r.id for r in victim_outbox.peek(0, 100)], events[0].occurred_at_ms)
    forged = [confirmation_of(f"{victim.identity.prefix}/events", encode_event(e)) for e in events]
    # Mosquitto 2.0.11 drops the connection after a refused publish (PUBACK 135), so
    # each forgery goes out on a connection of its own and waits for its own PUBACK.
    codes = [_publish_once(hostile.mqtt, topic, payload) for topic, payload in forged]
    assert set(codes) == {135}  # not authorised: the broker forwards none of them
    assert victim_outbox.unconfirmed() == 20
