"""A registered device's MQTT session exists before the device first connects.

The broker queues a QoS 1 message only for a session that exists. A gate registered
while erasures of its site are pending would otherwise miss the erase commands sent
before its first connection, and could publish before they reach it. Registration
therefore opens the device's persistent session once (its client id, its command
subscriptions at QoS 1, the edge's session expiry) and leaves: from then on every
command for the site waits in the broker for the gate, and the gate handles queued
commands before it publishes anything (``edge_agent.uplink.publisher``).
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.wire.topics import DeviceIdentity, command_topic, site_command_topic
from stream_processor.errors import BrokerError
from stream_processor.runtime.accounts import Credentials

#: The edge's default ``session_expiry_s`` (7 days): the broker keeps the queue that long.
SESSION_EXPIRY_S = 7 * 24 * 3600


def open_device_session(
    identity: DeviceIdentity,
    creds: Credentials,
    host: str,
    port: int,
    ca_file: Path | None = None,
    timeout_s: float = 10.0,
    session_expiry_s: int = SESSION_EXPIRY_S,
) -> None:
    """Connect as the device (clean_start=False) where its config says, subscribe to its
    command topics, leave."""
    done = threading.Event()
    failure: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds.username,
                         protocol=mqtt.MQTTv5)  # fmt: skip
    client.username_pw_set(creds.username, creds.password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
    topics = [(command_topic(identity), 1), (site_command_topic(identity.tenant, identity.site), 1)]

    def on_connect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        if getattr(rc, "is_failure", False):
            failure.append(f"connect refused: {rc}")
            done.set()
            return
        c.subscribe(topics)

    def on_subscribe(
        _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: Properties
    ) -> None:
        if any(code.is_failure for code in codes):
            failure.append("the broker refused the device's command subscriptions")
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    try:
        client.connect(host, port, keepalive=30, clean_start=False,
                       properties=props)  # fmt: skip
    except OSError as exc:
        raise BrokerError(f"cannot reach MQTT at {host}:{port}: {exc}") from exc
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            failure.append(f"no answer from the broker within {timeout_s:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
    if failure:
        raise BrokerError(f"could not open {identity.username}'s session: {failure[0]}")


__all__ = ["SESSION_EXPIRY_S", "open_device_session"]
