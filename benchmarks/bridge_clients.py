"""The bridge benchmark's client phase: the MQTT and Kafka clients side by side
that chose the bridge's own (see ``bridge_bench.py``; not run on its own).

MQTT: drain of a pre-filled persistent session with manual acks, paho-mqtt
against the bridge's asyncio link. Kafka: produce with a per-record
confirmation, acks=all, idempotent, kafka-python against confluent-kafka.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.uplink.settings import DeviceConnection
from stream_processor.bridge.session import ensure_bridge_session
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.runtime.accounts import AccountBook, Credentials
from stream_processor.runtime.kafka_auth import Role, client_config
from stream_processor.runtime.layout import StateLayout
from stream_processor.stack.settings import StackSettings

#: Receive Maximum of both MQTT clients, as the bridge's own default order of size.
RECEIVE_MAXIMUM = 5000


def phase_clients(
    settings: StackSettings,
    conn: DeviceConnection,
    n: int,
    tmp: Path,
    prefill: Callable[[list[DeviceConnection], int, Path], float],
    make_event: Callable[[Any, int], bytes],
    topic: str,
) -> dict[str, float]:
    """Rates (messages/s) of each client, by name."""
    creds = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
    filt = f"facegate/v1/{conn.identity.tenant}/+/+/+/events"

    def fresh_session(cid: str) -> None:
        bs = BridgeSettings(instance=cid, scope=[conn.identity.tenant])
        ensure_bridge_session(settings.host, settings.mqtt_port, creds, bs)
        prefill([conn], n, tmp)

    fresh_session("paho")
    results = {"mqtt paho-mqtt 2.2.0 (manual ack)": paho_drain(settings, creds, n)}
    fresh_session("link")
    results["mqtt facegate asyncio link (manual, batched acks)"] = asyncio.run(
        link_drain(settings, creds, filt, n)
    )
    payloads = [make_event(conn.identity, s) for s in range(n)]
    results["kafka kafka-python 2.3.3 (idempotent)"] = kafka_python_rate(settings, topic, payloads)
    results["kafka confluent-kafka 2.16.1 (idempotent)"] = confluent_rate(settings, topic, payloads)
    return results


def paho_drain(settings: StackSettings, creds: Credentials, n: int) -> float:
    """paho, manual ack of each message, like the bridge before its own link."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    done = threading.Event()
    count = [0]

    def on_message(c: Any, u: Any, m: Any) -> None:
        c.ack(m.mid, 1)
        count[0] += 1
        if count[0] >= n:
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="facegate-bridge-paho",
                    protocol=mqtt.MQTTv5, manual_ack=True)  # fmt: skip
    c.username_pw_set(creds.username, creds.password)
    c.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    t = time.monotonic()
    c.connect(settings.host, settings.mqtt_port, clean_start=False, properties=props)
    c.loop_start()
    done.wait(300)
    rate = n / (time.monotonic() - t)
    c.disconnect()
    c.loop_stop()
    return rate


async def link_drain(settings: StackSettings, creds: Credentials, filt: str, n: int) -> float:
    """The bridge's asyncio link, PUBACKs written in batches of 256."""
    from stream_processor.bridge.mqtt_link import MqttLink

    got = [0]
    finished = asyncio.Event()
    pending: list[int] = []

    def on_publish(p: Any) -> None:
        pending.append(p.packet_id)
        got[0] += 1
        if len(pending) >= 256 or got[0] >= n:
            link.ack(pending.copy())
            pending.clear()
        if got[0] >= n:
            finished.set()

    link = MqttLink(
        settings.host, settings.mqtt_port, "facegate-bridge-link",
        creds.username, creds.password, on_publish, receive_maximum=RECEIVE_MAXIMUM,
    )  # fmt: skip
    t0 = time.monotonic()
    await link.open([filt])
    await asyncio.wait_for(finished.wait(), 300)
    elapsed = time.monotonic() - t0
    await link.close()
    return n / elapsed


def kafka_python_rate(settings: StackSettings, topic: str, payloads: list[bytes]) -> float:
    from kafka import KafkaProducer

    kp = KafkaProducer(**client_config(Role.BRIDGE, settings), acks="all",
                       enable_idempotence=True, max_in_flight_requests_per_connection=1,
                       linger_ms=5, batch_size=262_144)  # fmt: skip
    t = time.monotonic()
    for p in payloads:
        kp.send(topic, key=b"k", value=p)
    kp.flush(300)
    rate = len(payloads) / (time.monotonic() - t)
    kp.close()
    return rate


def confluent_rate(settings: StackSettings, topic: str, payloads: list[bytes]) -> float:
    from confluent_kafka import Producer

    cp = Producer({**client_config(Role.BRIDGE, settings, "confluent"), "enable.idempotence": True,
                   "acks": "all", "linger.ms": 5, "batch.size": 1_048_576})  # fmt: skip
    ok = [0]

    def report(err: Any, _m: Any) -> None:
        if err is None:
            ok[0] += 1

    t = time.monotonic()
    for p in payloads:
        while True:
            try:
                cp.produce(topic, p, key=b"k", on_delivery=report)
                break
            except BufferError:
                cp.poll(0.01)
        cp.poll(0)
    cp.flush(300)
    return ok[0] / (time.monotonic() - t)
