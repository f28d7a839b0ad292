"""At least once, end to end, on real brokers: the bridge killed with SIGKILL in
the middle of 50,000 events, Mosquitto restarted and Kafka killed mid-stream —
every event reaches Kafka, and the store holds exactly one row per event."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import msgspec
import pytest

from edge_agent.outbox import SqliteOutbox
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.wire import encode_event
from tests.bridge.conftest import BridgeRig, event_ids, events_for, wait_proc
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

N = 50_000


def _with_seq(event: Any) -> Any:
    return lambda seq: msgspec.structs.replace(event, seq=seq)


SITES = 5


def test_kill_9_bridge_mid_50k_then_restart_all_in_kafka_exactly_once_stored(
    rig: BridgeRig,
) -> None:
    rig.apply_policy()
    rig.prepare_session()
    per_site = N // SITES
    sent: set[str] = set()
    batches = []
    for s in range(SITES):
        conn = rig.device(f"site-{s}")
        events = events_for(f"site-{s}", per_site)
        sent |= {e.event_id for e in events}
        batches.append((conn, [encode_event(e) for e in events]))
    assert len(sent) == N

    rig.p.start("processor", "worker", name="processor")
    bridge = rig.start_bridge("bridge-1")
    pubs = [rig.publish(conn, payloads) for conn, payloads in batches]

    raw = rig.p.topics().raw
    wait_for(lambda: rig.count(raw) >= N // 5, 120, "the bridge well under way")
    bridge.send_signal(signal.SIGKILL)
    bridge.wait(10)
    at_kill = rig.count(raw)
    assert at_kill < N, "killed too late to prove anything"
    for pub in pubs:
        wait_proc(pub)  # the devices finish publishing while no bridge runs
    rig.start_bridge("bridge-2")

    wait_for(lambda: rig.count(raw) >= N, 240, "every event in Kafka after the restart")
    in_kafka = event_ids(rig.read(raw))
    assert set(in_kafka) == sent  # nothing lost; duplicates (redelivery) allowed here
    wait_for(lambda: len(rig.stored_ids()) >= N, 300, "every event stored")
    time.sleep(3)  # a duplicate row would show up now
    stored = rig.stored_ids()
    assert len(stored) == len(set(stored)) == N
    assert set(stored) == sent
    assert rig.count(rig.p.topics().dlq) == 0
    print(f"\nkilled at {at_kill} in Kafka; {len(in_kafka) - N} redelivered duplicates in Kafka")


def test_mosquitto_restart_then_kafka_kill_mid_stream_lose_nothing(rig: BridgeRig) -> None:
    from stream_processor.stack.kafka import Kafka
    from stream_processor.stack.mosquitto import Mosquitto

    n = 20_000
    rig.prepare_session()
    conn = rig.device("site-r")
    outbox = SqliteOutbox(rig.p.tmp / "outbox.sqlite")
    events = []
    for _ in range(0, n, 1000):
        made = events_for("site-r", 1000)
        events += outbox.append_many([_with_seq(e) for e in made])
    rig.start_bridge()
    # The device: durable outbox, QoS 1, reconnects by itself.
    stop = threading.Event()
    publisher = OutboxPublisher(outbox, conn.identity, conn.mqtt)
    runner = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    runner.start()

    raw = rig.p.topics().raw
    settings = rig.settings
    try:
        wait_for(lambda: rig.count(raw) >= n // 5, 120, "traffic flowing")
        broker = Mosquitto(settings)
        broker.down()  # SIGTERM: Mosquitto saves its persistent sessions
        time.sleep(2)
        broker.up()
        mid = rig.count(raw)
        wait_for(lambda: rig.count(raw) >= mid + n // 5, 120, "traffic again after Mosquitto")
        kafka = Kafka(settings)
        kafka.kill()  # SIGKILL: no controlled shutdown
        time.sleep(3)
        kafka.up()
        wait_for(lambda: outbox.depth() == 0, 240, "the device's outbox drained")
        try:
            wait_for(lambda: rig.count(raw) >= n, 120, "every event in Kafka")
        except AssertionError:
            pass  # the set comparison below says what is missing
    finally:
        stop.set()
        runner.join(30)
    ids = event_ids(rig.read(raw))
    missing = sorted(e.seq for e in events if e.event_id not in set(ids))
    assert not missing, (
        f"{len(missing)} lost, seq {missing[:5]}…{missing[-5:]}; device: published"
        f" {publisher.published}, refused {publisher.refused} ({publisher.last_refusal})"
    )
    assert set(ids) == {e.event_id for e in events}
    assert publisher.refused == 0
    log = rig.p.log("bridge")
    assert "MQTT connected" in log
    print(f"\n{len(ids) - n} duplicates in Kafka after a Mosquitto restart and a Kafka kill")
