"""Identity and transport security on real brokers: one device cannot speak for
another (the broker refuses the topic, the bridge refuses the payload), the
TLS listener verifies with the project CA, anonymous clients are refused."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_agent.wire import encode_event
from edge_agent.wire.commands import AckStatus, CommandAck, CommandType, encode
from edge_agent.wire.ids import new_event_id
from edge_agent.wire.topics import ack_topic, event_topic
from stream_processor.dead_letter import decode_dead_letter
from tests.bridge.conftest import BridgeRig, events_for
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e


class Device:
    """A paho MQTT v5 client that records PUBACK reason codes."""

    def __init__(self, host: str, port: int, user: str | None, password: str | None,
                 ca: str | None = None) -> None:  # fmt: skip
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{time.time_ns()}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        if user:
            self.client.username_pw_set(user, password)
        if ca:
            self.client.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
        self.acks: dict[int, Any] = {}
        self.rc: Any = None
        self.error: BaseException | None = None
        ready = threading.Event()

        def on_connect(c, u, f, rc, p):  # type: ignore[no-untyped-def]
            self.rc = rc
            ready.set()

        self.client.on_connect = on_connect
        self.client.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc)
        try:
            self.client.connect(host, port)
        except (OSError, ssl.SSLError) as exc:
            self.error = exc
            return
        self.client.loop_start()
        ready.wait(10)

    @property
    def connected(self) -> bool:
        return self.error is None and self.rc is not None and not self.rc.is_failure

    def publish(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.acks, 10, "PUBACK")
        return int(self.acks[info.mid].value)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def dead_letters(rig: BridgeRig) -> list[Any]:
    return [decode_dead_letter(v) for _, v in rig.read(rig.p.topics().dlq)]


def test_device_cannot_publish_as_another_and_payload_spoofing_is_dead_lettered(
    rig: BridgeRig,
) -> None:
    rig.prepare_session()
    a = rig.device("site-a")
    b = rig.device("site-b")
    rig.start_bridge()
    m = a.mqtt
    dev = Device(m.host, m.port, m.username, m.password.get_secret_value())
    assert dev.connected
    own, under_b, naming_b = events_for("site-a", 1) + events_for("site-b", 2)[:2]
    try:
        assert dev.publish(event_topic(a.identity), encode_event(own)) == 0
        # A's account writing under B's prefix: refused by the broker's ACL.
        assert dev.publish(event_topic(b.identity), encode_event(under_b)) == 135
        # A's own topic, a payload that claims to come from site-b: the bridge refuses it.
        assert dev.publish(event_topic(a.identity), encode_event(naming_b)) == 0
    finally:
        dev.close()

    topics = rig.p.topics()
    wait_for(lambda: rig.count(topics.raw) >= 1 and rig.count(topics.dlq) >= 1, 60, "bridged")
    time.sleep(2)
    raw = [json.loads(v)["event_id"] for _, v in rig.read(topics.raw)]
    assert raw == [own.event_id]
    letters = dead_letters(rig)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.reason == "identity_mismatch"
    assert letter.source_topic == event_topic(a.identity)
    assert "site-b" in letter.detail and letter.stage == "bridge"
    # The payload's size, its keyed digest and its field names; none of its values.
    assert letter.fields_seen == sorted(json.loads(encode_event(naming_b)))
    assert letter.raw_digest.startswith("hmac-sha256:")
    assert naming_b.event_id.encode() not in letter.encode()
    assert letter.raw_len == len(encode_event(naming_b))
    assert abs(letter.received_at_ms - time.time() * 1000) < 120_000
    # Nothing of the refused publish reached Kafka at all.
    everything = b"".join(v for _, v in rig.read(topics.raw) + rig.read(topics.dlq))
    assert under_b.event_id.encode() not in everything
    assert base64.b64encode(encode_event(under_b)[:60]) not in everything


def _ack(ident: Any, **over: Any) -> bytes:
    fields: dict[str, Any] = dict(
        schema_version=1, command_id=new_event_id(), type=CommandType.ERASE_SUBJECT,
        tenant=ident.tenant, site=ident.site, gate=ident.gate, device=ident.device,
        subject="ps1_" + "0" * 32, status=AckStatus.DONE, templates_removed=1,
        outbox_events_purged=0, acked_at_ms=int(time.time() * 1000),
    )  # fmt: skip
    fields.update(over)
    return encode(CommandAck(**fields))


def test_device_acks_reach_kafka_forged_ones_are_dead_lettered(rig: BridgeRig) -> None:
    rig.prepare_session()
    a = rig.device("site-a")
    rig.start_bridge()
    m = a.mqtt
    dev = Device(m.host, m.port, m.username, m.password.get_secret_value())
    good = _ack(a.identity)
    forged = _ack(a.identity, site="site-z")
    try:
        assert dev.publish(ack_topic(a.identity), good) == 0
        assert dev.publish(ack_topic(a.identity), forged) == 0
        assert dev.publish(ack_topic(a.identity), b'{"schema_version":1}') == 0
    finally:
        dev.close()
    topics = rig.p.topics()
    wait_for(lambda: rig.count(topics.acks) >= 1 and rig.count(topics.dlq) >= 2, 60, "bridged")
    acks = rig.read(topics.acks)
    assert acks == [(b"acme/site-a", good)]
    reasons = sorted(d.reason for d in dead_letters(rig))
    assert reasons == ["identity_mismatch", "missing_field"]


def test_tls_with_project_ca_works_without_it_fails_anonymous_refused(rig: BridgeRig) -> None:
    s = rig.settings
    rig.prepare_session()
    conn = rig.device("site-t")
    rig.start_bridge()
    from edge_agent.uplink.settings import DeviceConnection
    from stream_processor.runtime.devices import register_device
    from stream_processor.stack.mosquitto import Mosquitto

    tls_conn = DeviceConnection.load(
        __import__("pathlib").Path(
            register_device(s, conn.identity, broker=Mosquitto(s))
        )  # TLS by default
    )
    m = tls_conn.mqtt
    assert m.port == s.mqtt_tls_port and m.ca_file is not None and m.ca_file.exists()
    password = m.password.get_secret_value()

    # With the project CA: connects, verifies host and chain, publishes, reaches Kafka.
    dev = Device(m.host, m.port, m.username, password, ca=str(m.ca_file))
    assert dev.connected, (dev.rc, dev.error)
    event = events_for("site-t", 1)[0]
    assert dev.publish(event_topic(conn.identity), encode_event(event)) == 0
    dev.close()
    raw = rig.p.topics().raw
    wait_for(lambda: rig.count(raw) >= 1, 60, "the TLS-published event in Kafka")
    assert json.loads(rig.read(raw)[0][1])["event_id"] == event.event_id

    # Without the project CA (the system's trust store): the handshake fails.
    system = Device(m.host, m.port, m.username, password, ca=ssl.get_default_verify_paths().cafile
                    or "/etc/ssl/certs/ca-certificates.crt")  # fmt: skip
    assert isinstance(system.error, ssl.SSLError), system.error
    # Plain MQTT against the TLS port: no MQTT session comes up.
    plain_on_tls = Device(m.host, m.port, m.username, password)
    assert not plain_on_tls.connected
    # Anonymous and wrong password: refused on both listeners.
    for port, ca in ((s.mqtt_tls_port, str(m.ca_file)), (s.mqtt_port, None)):
        anon = Device(s.host, port, None, None, ca=ca)
        assert anon.rc is not None and anon.rc.is_failure, (port, anon.rc, anon.error)
        wrong = Device(s.host, port, m.username, "wrong", ca=ca)
        assert wrong.rc is not None and wrong.rc.is_failure, (port, wrong.rc)
        anon.client.loop_stop()
        wrong.client.loop_stop()
    # The plain listener is for local development: loopback only.
    conf = (s.state_dir / "mosquitto" / "mosquitto.conf").read_text()
    assert f"listener {s.mqtt_port} 127.0.0.1" in conf
    assert f"listener {s.mqtt_tls_port} " in conf and "tls_version tlsv1.2" in conf


def test_removed_device_is_refused(rig: BridgeRig) -> None:
    from stream_processor.runtime.devices import unregister_device
    from stream_processor.stack.mosquitto import Mosquitto

    s = rig.settings
    conn = rig.device("site-gone")
    m = conn.mqtt
    dev = Device(m.host, m.port, m.username, m.password.get_secret_value())
    assert dev.connected
    assert unregister_device(s, conn.identity, broker=Mosquitto(s))
    # SIGHUP: the broker re-reads passwords and ACLs, and drops the connection of an
    # account that no longer exists (Mosquitto re-checks connected clients).
    wait_for(lambda: not dev.client.is_connected(), 10, "the removed device disconnected")
    dev.client.loop_stop()
    again = Device(m.host, m.port, m.username, m.password.get_secret_value())
    assert again.rc is not None and again.rc.is_failure
    again.client.loop_stop()
