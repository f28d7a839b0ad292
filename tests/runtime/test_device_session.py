"""A gate registered while erasures of its site are pending gets their commands before it
can publish: registration opens its session, so the broker queues the site's commands
for it from then on, and the gate's first connection receives them. Real Mosquitto."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.wire.topics import DeviceIdentity, site_command_topic
from stream_processor.runtime.devices import register_device

pytestmark = pytest.mark.component


def _client(client_id: str, user: str, password: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    return c


def publish_as_bridge(settings: Any, accounts: Any, topic: str, payload: bytes) -> None:
    creds = accounts.bridge_credentials()
    c = _client(f"bridge-test-{time.time_ns()}", creds.username, creds.password)
    c.connect(settings.host, settings.mqtt_port)
    c.loop_start()
    try:
        c.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


def first_connection(settings: Any, accounts: Any, ident: DeviceIdentity) -> list[bytes]:
    """Connect as the gate does (its client id, clean_start=False) and collect for 2 s."""
    creds = accounts.credentials(ident.username)
    got: list[bytes] = []
    c = _client(ident.username, creds.username, creds.password)
    c.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    connected = threading.Event()
    c.on_connect = lambda *_: connected.set()
    c.connect(settings.host, settings.mqtt_port, clean_start=False, properties=props)
    c.loop_start()
    try:
        assert connected.wait(10)
        time.sleep(2)
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def test_registration_opens_the_session_so_the_sites_commands_wait_for_the_gate(
    running_stack: Any,
) -> None:
    from stream_processor.stack.mosquitto import Mosquitto

    settings = running_stack.settings()
    broker = Mosquitto(settings)
    site = f"late-{time.time_ns() % 10**9}"
    late = DeviceIdentity("acme", site, "gate-9", "cam-9")
    unopened = DeviceIdentity("acme", site, "gate-8", "cam-8")
    register_device(settings, late, tls=False, broker=broker)
    register_device(settings, unopened, tls=False, broker=broker, open_session=None)

    command = b'{"an": "erase command, as the bridge relays it"}'
    publish_as_bridge(settings, broker.accounts, site_command_topic("acme", site), command)

    # The registered gate has never connected; the command waited for it.
    assert first_connection(settings, broker.accounts, late) == [command]
    # Without the session opened at registration the broker had nobody to queue it for.
    assert first_connection(settings, broker.accounts, unopened) == []
