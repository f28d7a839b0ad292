"""Ending the durable MQTT sessions a test's bridges leave on the suite's Mosquitto.

A bridge connects with ``clean_start=False`` and a session expiry of days, so that a
restart finds what was queued meanwhile. After a test that session is dead weight: the
broker keeps it (and queues every matching message for it, up to its queue limits) for
the rest of the suite, and Mosquitto 2.0.11 even keeps dealing a disconnected shared
subscriber its round-robin share. ``end_session`` connects with the same client id and a
clean start and no expiry: the broker discards the old session, and the new one ends
when the connection closes. ``session_present`` asks without keeping anything.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from stream_processor.runtime.accounts import Credentials


class SessionProbeError(AssertionError):
    """The broker did not accept the connection (down, or refused the login)."""


def _connect_once(
    host: str, port: int, creds: Credentials, client_id: str, clean_start: bool,
    timeout_s: float,
) -> bool:  # fmt: skip
    """Connect as ``client_id`` with session expiry 0, leave at once; the CONNACK's
    session-present flag."""
    done = threading.Event()
    result: dict[str, object] = {}
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.username_pw_set(creds.username, creds.password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    # One delivery at most from a resumed session's backlog: it is never acked, and it
    # goes with the session when this connection closes.
    props.ReceiveMaximum = 1

    def on_connect(
        c: mqtt.Client, u: object, flags: mqtt.ConnectFlags, rc: object, p: object
    ) -> None:
        result["present"], result["rc"] = flags.session_present, rc
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10, clean_start=clean_start, properties=props)
    except OSError as exc:
        raise SessionProbeError(f"MQTT {host}:{port} unreachable: {exc}") from exc
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise SessionProbeError(f"no CONNACK for {client_id} in {timeout_s} s")
        rc = result["rc"]
        if getattr(rc, "is_failure", False):
            raise SessionProbeError(f"MQTT refused {client_id}: {rc}")
        return bool(result["present"])
    finally:
        client.disconnect()
        client.loop_stop()


def end_session(
    host: str, port: int, creds: Credentials, client_id: str, timeout_s: float = 10.0
) -> None:
    """Discard ``client_id``'s session (and its queue); no-op if it has none. The client
    must not be connected: the broker would take the connection over."""
    _connect_once(host, port, creds, client_id, clean_start=True, timeout_s=timeout_s)


def session_present(
    host: str, port: int, creds: Credentials, client_id: str, timeout_s: float = 10.0
) -> bool:
    """Whether the broker holds a session for ``client_id``. Asking resumes it with
    expiry 0, so it ends with this connection: a probe, not a read-only look."""
    return _connect_once(host, port, creds, client_id, clean_start=False, timeout_s=timeout_s)
