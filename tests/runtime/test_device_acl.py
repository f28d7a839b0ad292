"""Device accounts: a device may publish only under its own prefix; anonymous is refused."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest

from edge_agent.wire.topics import DeviceIdentity, event_topic
from stream_processor.runtime.accounts import AccountBook
from stream_processor.runtime.devices import register_device
from stream_processor.runtime.layout import StateLayout
from stream_processor.stack.mosquitto import Mosquitto

pytestmark = pytest.mark.component


def connect(port: int, username: str | None, password: str | None) -> tuple[mqtt.Client, object]:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{time.time_ns()}", protocol=mqtt.MQTTv5
    )
    if username:
        client.username_pw_set(username, password)
    result: dict[str, object] = {}
    ready = threading.Event()

    def on_connect(c, u, f, rc, p):  # type: ignore[no-untyped-def]
        result["rc"] = rc
        ready.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait(10)
    return client, result.get("rc")


def test_device_cannot_publish_under_another_device(running_stack) -> None:  # type: ignore[no-untyped-def]
    settings = running_stack.settings()
    a = DeviceIdentity("acl", "site-a", "gate-1", "dev-a")
    b = DeviceIdentity("acl", "site-b", "gate-1", "dev-b")
    register_device(settings, a, broker=Mosquitto(settings))
    register_device(settings, b, broker=Mosquitto(settings))
    creds_a = AccountBook(StateLayout(settings.state_dir)).credentials(a.username)

    # A watcher with the bridge's rights sees everything devices manage to publish.
    bridge = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
    watcher, rc = connect(settings.mqtt_port, bridge.username, bridge.password)
    assert not rc.is_failure  # type: ignore[attr-defined]
    seen: list[str] = []
    watcher.on_message = lambda c, u, m: seen.append(m.topic)
    watcher.subscribe("facegate/v1/acl/+/+/+/events", qos=1)
    time.sleep(0.5)

    client, rc = connect(settings.mqtt_port, creds_a.username, creds_a.password)
    assert not rc.is_failure  # type: ignore[attr-defined]
    acks: dict[int, object] = {}
    client.on_publish = lambda c, u, mid, rc, p: acks.__setitem__(mid, rc)
    own = client.publish(event_topic(a), b"{}", qos=1)
    spoof = client.publish(event_topic(b), b"{}", qos=1)
    deadline = time.time() + 10
    while time.time() < deadline and len(acks) < 2:
        time.sleep(0.05)
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    watcher.disconnect()
    watcher.loop_stop()

    assert not acks[own.mid].is_failure  # type: ignore[attr-defined]
    assert acks[spoof.mid].value == 135  # type: ignore[attr-defined]  # Not authorized
    assert seen == [event_topic(a)]


def test_anonymous_and_wrong_password_are_refused(running_stack) -> None:  # type: ignore[no-untyped-def]
    port = running_stack.settings().mqtt_port
    client, rc = connect(port, None, None)
    client.loop_stop()
    assert rc is not None and rc.is_failure  # type: ignore[attr-defined]
    client, rc = connect(port, "facegate-bridge", "wrong")
    client.loop_stop()
    assert rc is not None and rc.is_failure  # type: ignore[attr-defined]
