"""Several bridge instances side by side lose nothing; the downlink relay
publishes Kafka commands to the site topic and commits only after the PUBACK."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_agent.wire import encode_event
from edge_agent.wire.commands import CommandType, EdgeCommand, decode_command, encode
from edge_agent.wire.ids import new_event_id
from edge_agent.wire.topics import site_command_topic
from stream_processor.dead_letter import decode_dead_letter
from tests.bridge.conftest import BridgeRig, event_ids, events_for, wait_proc
from tests.conftest import wait_for
from tests.support.kafka import confluent_config

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("mode", ["exclusive", "shared"])
def test_two_instances_split_the_work_one_killed_nothing_lost(rig: BridgeRig, mode: str) -> None:
    n_per_site, sites = 5_000, 4
    rig.p.extra_env["FACEGATE_BRIDGE_SUBSCRIPTION"] = mode
    scopes = {
        "a": '["acme/site-0", "acme/site-1"]' if mode == "exclusive" else "[]",
        "b": '["acme/site-2", "acme/site-3"]' if mode == "exclusive" else "[]",
    }
    for inst in ("a", "b"):
        rig.p.extra_env["FACEGATE_BRIDGE_SCOPE"] = scopes[inst]
        rig.prepare_session(instance=f"{rig.p.tag}-{inst}", scope=scopes[inst], mode=mode)
    batches, sent, all_events = [], set(), []
    for s in range(sites):
        events = events_for(f"site-{s}", n_per_site)
        all_events += events
        sent |= {e.event_id for e in events}
        batches.append((rig.device(f"site-{s}"), [encode_event(e) for e in events]))

    procs = {}
    for inst in ("a", "b"):
        rig.p.extra_env["FACEGATE_BRIDGE_SCOPE"] = scopes[inst]
        procs[inst] = rig.start_bridge(
            f"bridge-{inst}", instance=f"{rig.p.tag}-{inst}", own_port=True
        )
    for inst in ("a", "b"):
        wait_for(lambda i=inst: "MQTT connected" in rig.p.log(f"bridge-{i}"), 60, "connected")
    pubs = [rig.publish(conn, payloads) for conn, payloads in batches]
    raw = rig.p.topics().raw
    total = n_per_site * sites
    wait_for(lambda: rig.count(raw) >= total // 4, 120, "both instances under way")
    procs["a"].send_signal(signal.SIGKILL)
    procs["a"].wait(10)
    for pub in pubs:
        wait_proc(pub)
    # A stable instance id comes back to its own session (its share queued meanwhile).
    rig.p.extra_env["FACEGATE_BRIDGE_SCOPE"] = scopes["a"]
    rig.start_bridge("bridge-a2", instance=f"{rig.p.tag}-a", own_port=True)
    try:
        wait_for(lambda: rig.count(raw) >= total, 120, "every event in Kafka")
    except AssertionError:
        pass  # the comparison says how many are missing
    missing = sent - set(event_ids(rig.read(raw)))
    where = sorted((e.site, e.seq) for e in all_events if e.event_id in missing)
    assert not missing, f"{mode}: {len(missing)} of {total} lost: {where[:3]}…{where[-3:]}"
    assert "MQTT connected" in rig.p.log("bridge-a2")


def test_commands_relayed_to_site_topic_committed_after_puback(rig: BridgeRig) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    conn = rig.device("site-c")
    ident = conn.identity
    received: list[bytes] = []
    ready = threading.Event()
    m = conn.mqtt
    dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cmd-dev", protocol=mqtt.MQTTv5)
    dev.username_pw_set(m.username, m.password.get_secret_value())

    def on_connect(c: Any, u: Any, f: Any, rc: Any, p: Any) -> None:
        c.subscribe(site_command_topic(ident.tenant, ident.site), qos=1)

    dev.on_connect = on_connect
    dev.on_subscribe = lambda *a: ready.set()
    dev.on_message = lambda c, u, msg: received.append(bytes(msg.payload))
    dev.connect(m.host, m.port)
    dev.loop_start()
    assert ready.wait(10)

    topics = rig.p.topics()
    commands = [
        EdgeCommand(
            schema_version=1,
            command_id=new_event_id(),
            type=CommandType.ERASE_SUBJECT,
            tenant=ident.tenant,
            site=ident.site,
            subject="ps1_" + f"{i:032x}",
            issued_at_ms=int(time.time() * 1000),
        )  # fmt: skip
        for i in range(20)
    ]
    producer = Producer(confluent_config(rig.bootstrap))
    for cmd in commands[:10]:
        producer.produce(topics.commands, encode(cmd), key=f"{cmd.tenant}/{cmd.site}")
    producer.produce(topics.commands, b'{"schema_version":1,"type":"self_destruct"}', key="x")
    producer.flush(10)
    rig.start_bridge()
    time.sleep(1)
    for cmd in commands[10:]:  # while running, too
        producer.produce(topics.commands, encode(cmd), key=f"{cmd.tenant}/{cmd.site}")
    producer.flush(10)

    wait_for(lambda: len(received) >= 20, 60, "every command at the device")
    dev.disconnect()
    dev.loop_stop()
    got = [decode_command(r) for r in received]
    assert {c.command_id for c in got} == {c.command_id for c in commands}
    wait_for(lambda: rig.count(topics.dlq) >= 1, 30, "the bad command dead-lettered")
    letter = decode_dead_letter(rig.read(topics.dlq)[0][1])
    assert letter.stage == "downlink" and letter.source_topic == topics.commands

    # Committed past every record (only after each PUBACK, see service._relay_commands).
    group = f"bridge-{rig.p.tag}-commands"
    c = Consumer({**confluent_config(rig.bootstrap), "group.id": group})
    try:
        meta = c.list_topics(topics.commands, timeout=10)
        parts = [
            TopicPartition(topics.commands, p) for p in meta.topics[topics.commands].partitions
        ]

        def all_committed() -> bool:
            committed = c.committed(parts, timeout=10)
            ends = [c.get_watermark_offsets(p, timeout=10)[1] for p in parts]
            return all(max(cp.offset, 0) == end for cp, end in zip(committed, ends, strict=True))

        wait_for(all_committed, 30, "offsets committed to the end")
    finally:
        c.close()
    text = rig.metrics(int(rig.p.extra_env["FACEGATE_BRIDGE_METRICS_PORT"]))
    assert "facegate_bridge_commands_relayed_total 20.0" in text
