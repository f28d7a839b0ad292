"""Pure parts of the bridge: MQTT codec, ordered acks, validation, settings, TLS files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from edge_agent.wire import encode_event
from edge_agent.wire.commands import AckStatus, CommandAck, CommandType, decode_ack, encode
from edge_agent.wire.ids import new_event_id
from edge_agent.wire.topics import DeviceIdentity, ack_topic, event_topic
from stream_processor.bridge import mqtt_codec as codec
from stream_processor.bridge.acks import OrderedAcks
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.bridge.validate import ACK, EVENT, Accepted, Limits, Rejected, check_any
from tests.bridge.conftest import events_for

pytestmark = pytest.mark.unit

ME = DeviceIdentity("acme", "site-1", "gate-1", "cam-1")


def test_varint_and_publish_roundtrip_across_split_reads() -> None:
    assert codec.varint(0) == b"\x00" and codec.varint(127) == b"\x7f"
    assert codec.varint(128) == b"\x80\x01" and codec.varint(16_383) == b"\xff\x7f"
    packets = [
        codec.publish("a/b", os.urandom(n), qos=1, packet_id=i + 1, dup=bool(i % 2))
        for i, n in enumerate((0, 1, 127, 128, 5000, 70_000))
    ]
    stream = b"".join(packets)
    reader = codec.PacketReader()
    got = []
    for i in range(0, len(stream), 333):  # arbitrary TCP chunking
        got += [p for p in reader.feed(stream[i : i + 333]) if isinstance(p, codec.Publish)]
    assert [(p.topic, p.packet_id, p.dup, p.qos) for p in got] == [
        ("a/b", i + 1, bool(i % 2), 1) for i in range(6)
    ]
    assert [len(p.payload) for p in got] == [0, 1, 127, 128, 5000, 70_000]


def test_control_packets() -> None:
    assert codec.puback(258) == b"\x40\x02\x01\x02"
    assert codec.parse_puback(b"\x01\x02") == (258, (0,), {})
    assert codec.parse_puback(b"\x01\x02\x87\x00") == (258, (0x87,), {})
    assert codec.parse_connack(b"\x01\x00\x00") == (True, 0, {})
    assert codec.parse_suback(b"\x00\x05\x00\x01\x87") == (5, (1, 0x87), {})
    connect = codec.connect("cid", "user", "pw", 30, 3600, 500)
    assert connect[0] == 0x10 and b"MQTT\x05\xc0" in connect  # user+password, clean_start=0
    with pytest.raises(codec.ProtocolError):
        list(codec.PacketReader().feed(b"\x30\xff\xff\xff\xff\x01"))
    with pytest.raises(codec.ProtocolError):  # topic longer than the packet
        codec.PacketReader().feed(b"\x32\x04\x00\x09ab" + codec.PINGREQ_PACKET * 4)
    pingresp, publish = codec.PacketReader().feed(b"\xd0\x00" + codec.publish("t", b"x", 0))
    assert pingresp == codec.Packet(codec.PINGRESP, 0, b"")
    assert publish == ("t", b"x", 0, 0, False, False, {})


def test_ordered_acks_release_in_arrival_order_and_forget_old_generations() -> None:
    released: list[int] = []
    acks = OrderedAcks(released.append)
    a, b, c = acks.add(1), acks.add(2), acks.add(3)
    assert acks.done(c) == 0 and acks.done(a) == 1 and released == [1]
    assert acks.done(b) == 2 and released == [1, 2, 3] and len(acks) == 0
    d = acks.add(4)
    assert acks.reset() == 1
    assert acks.done(d) == 0 and released == [1, 2, 3]  # redelivered, not acked


def _ack(**over: object) -> bytes:
    fields: dict[str, object] = dict(
        schema_version=1, command_id=new_event_id(), type=CommandType.WITHDRAW_CONSENT,
        tenant="acme", site="site-1", gate="gate-1", device="cam-1",
        subject="ps1_" + "a" * 32, status=AckStatus.DONE, templates_removed=1,
        outbox_events_purged=2, acked_at_ms=int(time.time() * 1000),
    )  # fmt: skip
    fields.update(over)
    return encode(CommandAck(**fields))  # type: ignore[arg-type]


def test_validation_routes_and_identity() -> None:
    ev = encode_event(events_for("site-1", 1)[0])
    now = int(time.time() * 1000)
    lim, small = Limits(4096, 300_000, 86_400_000), Limits(100, 300_000, 86_400_000)
    assert check_any(event_topic(ME), ev, lim, now) == (EVENT, Accepted(b"acme/site-1", ev, 0))
    kind, verdict = check_any(event_topic(ME), ev, small, now)
    assert isinstance(verdict, Rejected) and verdict.reason == "oversized"
    other = DeviceIdentity("acme", "site-2", "gate-1", "cam-1")
    _, verdict = check_any(event_topic(other), ev, lim, now)
    assert isinstance(verdict, Rejected) and verdict.reason == "identity_mismatch"
    _, verdict = check_any("facegate/v1/ACME/x/y/z/events", ev, lim, now)
    assert isinstance(verdict, Rejected) and verdict.reason == "bad_topic"
    good = _ack()
    command_id = decode_ack(good).command_id
    assert check_any(ack_topic(ME), good, lim, now) == (
        ACK, Accepted(b"acme/site-1", good, -1, command_id)
    )
    _, verdict = check_any(ack_topic(ME), _ack(device="cam-2"), lim, now)
    assert isinstance(verdict, Rejected) and verdict.reason == "identity_mismatch"
    _, verdict = check_any(ack_topic(ME), ev, lim, now)  # an event on the acks topic
    assert isinstance(verdict, Rejected) and verdict.reason == "unknown_field"


def test_filters_by_mode_and_scope() -> None:
    assert BridgeSettings().filters() == [
        "facegate/v1/+/+/+/+/events", "facegate/v1/+/+/+/+/acks", "facegate/v1/+/+/+/+/status",
    ]  # fmt: skip
    s = BridgeSettings(scope=["acme", "other/north"], subscription="shared", share_group="g")
    assert s.filters() == [
        "$share/g/facegate/v1/acme/+/+/+/events", "$share/g/facegate/v1/acme/+/+/+/acks",
        "$share/g/facegate/v1/acme/+/+/+/status",
        "$share/g/facegate/v1/other/north/+/+/events", "$share/g/facegate/v1/other/north/+/+/acks",
        "$share/g/facegate/v1/other/north/+/+/status",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="scope entry"):
        BridgeSettings(scope=["Acme/#"])


def test_tls_files_are_made_once_and_cover_the_hosts(tmp_path: Path) -> None:
    from cryptography import x509

    from stream_processor.runtime.layout import StateLayout
    from stream_processor.runtime.tls import ensure_tls

    layout = StateLayout(tmp_path)
    files = ensure_tls(layout, ["127.0.0.1", "localhost"])
    ca, server = files.ca_cert.read_bytes(), files.server_cert.read_bytes()
    assert oct(files.ca_key.stat().st_mode & 0o777) == "0o600"
    assert oct(files.server_key.stat().st_mode & 0o777) == "0o600"
    assert ensure_tls(layout, ["127.0.0.1", "localhost"]) == files
    assert files.server_cert.read_bytes() == server  # idempotent
    ensure_tls(layout, ["127.0.0.1", "localhost", "mqtt.example.org"])
    assert files.ca_cert.read_bytes() == ca  # the CA stays; devices keep trusting it
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mqtt.example.org" in san.get_values_for_type(x509.DNSName)
    assert cert.issuer == x509.load_pem_x509_certificate(ca).subject
