"""Pre-create the bridge's durable MQTT session, so that events published before
the first bridge instance ever ran are queued for it instead of dropped
(Mosquitto discards messages that match no subscription)."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from stream_processor.bridge.settings import BridgeSettings
from stream_processor.errors import BrokerError
from stream_processor.runtime.accounts import Credentials


def ensure_bridge_session(
    host: str,
    port: int,
    credentials: Credentials,
    settings: BridgeSettings | None = None,
    timeout_s: float = 10,
) -> bool:
    """Connect as the bridge instance with a persistent session, subscribe, leave.

    ``settings`` defaults to this environment's bridge (``FACEGATE_BRIDGE_*``).
    Returns True if the session already existed.
    """
    settings = settings or BridgeSettings()
    done = threading.Event()
    result: dict[str, object] = {}
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv5,
        manual_ack=True,
    )  # fmt: skip
    client.username_pw_set(credentials.username, credentials.password)
    # Never take a message: deliveries wait for the real bridge instance.
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = settings.session_expiry_s
    props.ReceiveMaximum = 1

    def on_connect(
        c: mqtt.Client, u: object, flags: mqtt.ConnectFlags, rc: object, p: object
    ) -> None:
        result["present"] = flags.session_present
        result["rc"] = rc
        if flags.session_present:
            done.set()
        else:
            c.subscribe([(f, 1) for f in settings.filters()])

    def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: object, p: object) -> None:
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.connect(host, port, keepalive=10, clean_start=False, properties=props)
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise BrokerError(f"could not create the bridge session: {result.get('rc')}")
    finally:
        client.disconnect()
        client.loop_stop()
    return bool(result.get("present"))
