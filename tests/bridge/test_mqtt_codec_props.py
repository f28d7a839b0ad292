"""Property-based tests of the bridge's MQTT v5 codec against an independent
encoder/decoder written from the specification (``tests/bridge/mqtt_reference.py``).

Valid packets round-trip field for field in both directions, whatever the TCP
chunking; truncated, oversized and malformed frames are refused with the
codec's ``ProtocolError`` (a ``FacegateError``) and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import FacegateError
from stream_processor.bridge import mqtt_codec as codec
from tests.bridge import mqtt_reference as ref

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

# Reason codes a server may send, from the spec's tables (3.2.2.2, 3.4.2.1, 3.9.3, 3.14.2.1).
CONNACK_CODES = [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
                 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F]  # fmt: skip
PUBACK_CODES = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]
SUBACK_CODES = [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2]
DISCONNECT_CODES = [0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90,
                    0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E,
                    0x9F, 0xA0, 0xA1, 0xA2]  # fmt: skip
BAD_UTF8 = [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80"]
SERVER_FLAGS = {2: 0, 4: 0, 9: 0, 13: 0, 14: 0}

text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
packet_id = st.integers(1, 0xFFFF)


def value_of(ident: int) -> st.SearchStrategy[Any]:
    kind = ref.PROPERTY_TYPES[ident][0]
    if kind == "byte":  # every byte property is 0/1 (Maximum QoS included)
        return st.integers(0, 1)
    if kind == "two":  # Receive Maximum and Topic Alias must not be 0
        return st.integers(1, 0xFFFF) if ident in (33, 35) else u16
    if kind == "four":
        return st.integers(1, 0xFFFFFFFF) if ident == 39 else u32
    if kind == "vbi":
        return st.integers(1, 268_435_455)
    if kind == "binary":
        return st.binary(max_size=12)
    if kind == "pair":
        return st.tuples(text, text)
    return text


@st.composite
def properties(draw: st.DrawFn, packet: str, exclude: Iterable[int] = ()) -> dict[int, Any]:
    allowed = [i for i, (_, where) in ref.PROPERTY_TYPES.items() if packet in where]
    ids = draw(st.lists(st.sampled_from([i for i in allowed if i not in exclude]), unique=True,
                        max_size=4))  # fmt: skip
    out: dict[int, Any] = {}
    for ident in ids:
        if ident == 38 or (ident == 11 and packet == "publish"):
            out[ident] = tuple(draw(st.lists(value_of(ident), min_size=1, max_size=3)))
        else:
            out[ident] = draw(value_of(ident))
    return out


@st.composite
def payloads(draw: st.DrawFn, large: bool) -> bytes:
    piece = draw(st.binary(max_size=300))
    if large and draw(st.integers(0, 9)) == 0:  # sometimes past the codec's 64 KiB path
        return (piece or b"x") * draw(st.integers(1, 70_000 // max(len(piece), 1) + 2))
    return piece


@st.composite
def server_packet(draw: st.DrawFn, large: bool = True) -> dict[str, Any]:
    kind = draw(st.sampled_from(["connack", "publish", "puback", "suback", "pingresp",
                                 "disconnect"]))  # fmt: skip
    if kind == "connack":
        reason = draw(st.sampled_from(CONNACK_CODES))
        present = draw(st.booleans()) and reason < 0x80
        return {"type": kind, "session_present": present, "reason": reason,
                "props": draw(properties("connack"))}  # fmt: skip
    if kind == "publish":
        qos = draw(st.integers(0, 1))
        return {"type": kind, "topic": draw(text.filter(bool)), "qos": qos,
                "packet_id": draw(packet_id) if qos else 0, "dup": qos == 1 and draw(st.booleans()),
                "retain": draw(st.booleans()), "props": draw(properties("publish", exclude=[35])),
                "payload": draw(payloads(large))}  # fmt: skip
    if kind == "puback":
        return {"type": kind, "packet_id": draw(packet_id),
                "reason": draw(st.sampled_from(PUBACK_CODES)), "props": draw(properties("puback")),
                "long_form": draw(st.booleans())}  # fmt: skip
    if kind == "suback":
        return {
            "type": kind,
            "packet_id": draw(packet_id),
            "props": draw(properties("suback")),
            "reasons": draw(st.lists(st.sampled_from(SUBACK_CODES), min_size=1, max_size=5)),
        }
    if kind == "disconnect":
        return {"type": kind, "reason": draw(st.sampled_from(DISCONNECT_CODES)),
                "props": draw(properties("disconnect", exclude=[17])),
                "long_form": draw(st.booleans())}  # fmt: skip
    return {"type": kind}


def as_dict(packet: codec.Publish | codec.Packet) -> dict[str, Any]:
    """A codec result in the reference's form (what the link gets out of the codec)."""
    if isinstance(packet, codec.Publish):
        return {"type": "publish", "topic": packet.topic, "qos": packet.qos,
                "packet_id": packet.packet_id, "dup": packet.dup, "retain": packet.retain,
                "props": dict(packet.properties), "payload": bytes(packet.payload)}  # fmt: skip
    kind, body = ref.TYPE_NAME.get(packet.type, "?"), packet.body
    if kind == "connack":
        c = codec.parse_connack(body)
        return {"type": kind, "session_present": c.session_present, "reason": c.reason,
                "props": dict(c.properties)}  # fmt: skip
    if kind == "puback":
        a = codec.parse_puback(body)
        return {"type": kind, "packet_id": a.packet_id, "reason": a.reasons[0],
                "props": dict(a.properties)}  # fmt: skip
    if kind == "suback":
        s = codec.parse_suback(body)
        return {"type": kind, "packet_id": s.packet_id, "props": dict(s.properties),
                "reasons": list(s.reasons)}  # fmt: skip
    if kind == "disconnect":
        d = codec.parse_disconnect(body)
        return {"type": kind, "reason": d.reason, "props": dict(d.properties)}
    if kind == "pingresp":
        codec.parse_pingresp(body)
        return {"type": kind}
    raise AssertionError(f"the codec framed a packet of type {packet.type}")


def decode_chunks(chunks: Iterable[bytes], max_packet: int = codec.MAX_PACKET) -> list[Any]:
    reader = codec.PacketReader(max_packet)
    return [as_dict(p) for chunk in chunks for p in reader.feed(chunk)]


def expected(packets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in p.items() if k != "long_form"} for p in packets]


def refused(data: bytes, max_packet: int = codec.MAX_PACKET) -> codec.ProtocolError:
    with pytest.raises(codec.ProtocolError) as caught:
        decode_chunks([data], max_packet)
    assert isinstance(caught.value, FacegateError)
    return caught.value


def frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + ref.encode_vbi(len(body)) + body


# -- valid packets ------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=st.lists(server_packet(), min_size=1, max_size=6), data=st.data())
def test_server_packets_round_trip_in_random_chunks(packets: list[Any], data: Any) -> None:
    stream = b"".join(map(ref.encode, packets))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert decode_chunks(chunks) == expected(packets)


@settings(max_examples=60, deadline=None)
@given(packets=st.lists(server_packet(large=False), min_size=1, max_size=3))
def test_a_split_at_every_byte_boundary_parses_the_same(packets: list[Any]) -> None:
    stream = b"".join(map(ref.encode, packets))[:1500]
    whole = decode_chunks([stream])
    for k in range(len(stream) + 1):
        assert decode_chunks([stream[:k], stream[k:]]) == whole
    assert decode_chunks(stream[i : i + 1] for i in range(len(stream))) == whole
    assert whole == expected(packets)[: len(whole)]


@settings(max_examples=200, deadline=None)
@given(client_id=text, username=text, password=text, keepalive=u16, expiry=u32,
       receive_maximum=st.integers(1, 0xFFFF), clean_start=st.booleans(),
       maximum_packet_size=st.integers(codec.MIN_MAX_PACKET, 0xFFFFFFFF))  # fmt: skip
def test_connect_as_the_spec_reads_it(
    client_id: str, username: str, password: str, keepalive: int, expiry: int,
    receive_maximum: int, clean_start: bool, maximum_packet_size: int,
) -> None:  # fmt: skip
    raw = codec.connect(client_id, username, password, keepalive, expiry, receive_maximum,
                        clean_start, maximum_packet_size)  # fmt: skip
    assert ref.decode(raw) == (
        {"type": "connect", "protocol": "MQTT", "level": 5, "clean_start": clean_start,
         "keepalive": keepalive, "client_id": client_id, "username": username,
         "password": password.encode(),
         "props": {17: expiry, 33: receive_maximum, 39: maximum_packet_size}},
        len(raw),
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(topic=text.filter(bool), payload=st.binary(max_size=400), qos=st.integers(0, 1),
       pid=packet_id, dup=st.booleans(), retain=st.booleans(),
       props=properties("publish"))  # fmt: skip
def test_publish_as_the_spec_reads_it(
    topic: str, payload: bytes, qos: int, pid: int, dup: bool, retain: bool, props: Any
) -> None:
    dup = dup and qos == 1
    raw = codec.publish(topic, payload, qos, pid if qos else 0, dup, retain, props)
    assert ref.decode(raw) == (
        {"type": "publish", "topic": topic, "qos": qos, "packet_id": pid if qos else 0,
         "dup": dup, "retain": retain, "props": props, "payload": payload},
        len(raw),
    )  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(
    pid=packet_id,
    filters=st.lists(text.filter(bool), min_size=1, max_size=4),
    reason=st.sampled_from(PUBACK_CODES),
    disconnect=st.sampled_from([0, 0x04, 0x81, 0x95]),
)
def test_subscribe_puback_disconnect_pingreq_as_the_spec_reads_them(
    pid: int, filters: list[str], reason: int, disconnect: int
) -> None:  # fmt: skip
    stream = (codec.subscribe(pid, filters, qos=1) + codec.puback(pid, reason)
              + codec.disconnect(disconnect) + codec.PINGREQ_PACKET)  # fmt: skip
    got = []
    while stream:
        packet, used = ref.decode(stream)
        got.append(packet)
        stream = stream[used:]
    assert got == [
        {"type": "subscribe", "packet_id": pid, "props": {}, "filters": [(f, 1) for f in filters]},
        {"type": "puback", "packet_id": pid, "reason": reason, "props": {}},
        {"type": "disconnect", "reason": disconnect, "props": {}},
        {"type": "pingreq"},
    ]


# -- refused frames -------------------------------------------------------------------------
def must_refuse_cuts(packet: dict[str, Any], body: bytes) -> range | list[int]:
    """Body lengths at which a cut ``packet`` can no longer be a valid packet."""
    kind = packet["type"]
    if kind == "connack":
        return range(len(body))
    if kind == "publish":
        return range(len(body) - len(packet["payload"]))
    if kind == "suback":
        return range(len(body) - len(packet["reasons"]) + 1)
    if kind == "puback":
        return [0, 1, *range(4, len(body))]
    if kind == "disconnect":
        return range(2, len(body))
    return []


@settings(max_examples=300, deadline=None)
@given(packet=server_packet(large=False))
def test_truncated_bodies_are_refused(packet: dict[str, Any]) -> None:
    raw = ref.encode(packet)
    _, at = ref.decode_vbi(raw, 1)
    body = raw[at:]
    for k in must_refuse_cuts(packet, body):
        refused(frame(raw[0], body[:k]))
    # An incomplete frame is not an error: the reader waits for the rest.
    reader = codec.PacketReader()
    assert reader.feed(raw[:-1]) == [] and len(reader.feed(raw[-1:])) == 1


@settings(max_examples=100, deadline=None)
@given(max_packet=st.integers(codec.MIN_MAX_PACKET, 100_000), topic=text.filter(bool))
def test_a_frame_over_the_maximum_packet_size_is_refused_from_its_header(
    max_packet: int, topic: str
) -> None:
    def publish_of_size(size: int) -> bytes:
        for n in range(size, -1, -1):  # the remaining length's own size varies with n
            raw = codec.publish(topic, b"p" * n, 1, 7)
            if len(raw) <= size:
                return raw
        raise AssertionError(size)

    fits = publish_of_size(max_packet)
    assert max_packet - 1 <= len(fits) <= max_packet  # -1: where the length grows a byte
    assert len(decode_chunks([fits], max_packet)) == 1
    over = publish_of_size(max_packet + 2)
    assert len(over) > max_packet
    # Refused as soon as the remaining length is known, before any payload is buffered.
    assert refused(over[:5], max_packet).reason_code == codec.PACKET_TOO_LARGE
    assert refused(over, max_packet).reason_code == codec.PACKET_TOO_LARGE


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\x80\x80\x80\x80\x01",  # remaining length in 5 bytes
        b"\x30\xff\xff\xff\xff\x7f",
        b"\x30\x80\x00",  # remaining length not in its shortest form
        b"\xd0\x80\x80\x00",
        b"\x20\x07\x00\x00\xff\xff\xff\xff\x7f",  # CONNACK property length in 5 bytes
        b"\x20\x04\x00\x00\x80\x00",  # ... not in its shortest form
        b"\x30\x0a\x00\x01t\x80\x80\x80\x80\x01\x0b\x01",  # PUBLISH property length
        b"\x30\x0b\x00\x01t\x06\x0b\x80\x80\x80\x80\x01x",  # Subscription Identifier value
        b"\x20\x08\x00\x00\x05\x80\x80\x80\x80\x01",  # property identifier in 5 bytes
    ],
)
def test_bad_variable_byte_integers_are_refused(data: bytes) -> None:
    refused(data)


@given(kind=st.sampled_from(sorted(SERVER_FLAGS)), flags=st.integers(1, 15))
def test_wrong_fixed_header_flags_are_refused(kind: int, flags: int) -> None:
    good = {2: b"\x00\x00\x00", 4: b"\x00\x01", 9: b"\x00\x01\x00\x00", 13: b"", 14: b""}[kind]
    assert decode_chunks([frame(kind << 4, good)])  # the same body with the right flags parses
    refused(frame(kind << 4 | flags, good))


@pytest.mark.parametrize("first", [0x34, 0x35, 0x36, 0x37, 0x3C, 0x3F, 0x38, 0x39])
def test_publish_with_qos_2_or_3_or_dup_on_qos_0_is_refused(first: int) -> None:
    body = b"\x00\x01t" + (b"\x00\x05" if first & 0x06 else b"") + b"\x00payload"
    refused(frame(first, body))


@pytest.mark.parametrize("first", [0x00, 0x0F, 0x10, 0x82, 0xA2, 0xC0])
def test_packets_a_server_never_sends_are_refused(first: int) -> None:
    refused(frame(first, b""))


@settings(max_examples=200, deadline=None)
@given(before=text, bad=st.sampled_from(BAD_UTF8), after=text,
       where=st.sampled_from(["topic", "reason string", "user property", "client id"]))  # fmt: skip
def test_bad_utf8_is_refused(before: str, bad: bytes, after: str, where: str) -> None:
    raw = before.encode() + bad + after.encode()
    string = len(raw).to_bytes(2, "big") + raw
    if where == "topic":
        data = frame(0x30, string + b"\x00payload")
    else:
        ident = {"reason string": b"\x1f", "user property": b"\x26", "client id": b"\x12"}[where]
        value = string + (ref.encode_string("v") if where == "user property" else b"")
        data = frame(0x20, b"\x00\x00" + ref.encode_vbi(1 + len(value)) + ident + value)
    refused(data)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["connack", "publish", "puback", "suback",
                                             "disconnect"]))  # fmt: skip
def test_a_property_repeated_where_forbidden_is_refused(data: Any, kind: str) -> None:
    repeatable = {38} | ({11} if kind == "publish" else set())
    forbidden = {17} if kind == "disconnect" else {35} if kind == "publish" else set()
    ids = [i for i, (_, w) in ref.PROPERTY_TYPES.items()
           if kind in w and i not in repeatable | forbidden]  # fmt: skip
    ident = data.draw(st.sampled_from(ids))
    one, two = data.draw(value_of(ident)), data.draw(value_of(ident))
    block = ref.encode_property_list([(ident, one), (ident, two)])
    body = {
        "connack": b"\x00\x00" + block,
        "publish": b"\x00\x01t" + block + b"payload",
        "puback": b"\x00\x01\x00" + block,
        "suback": b"\x00\x01" + block + b"\x00",
        "disconnect": b"\x00" + block,
    }[kind]
    assert refused(frame(ref.PACKET_TYPE[kind] << 4, body)).reason_code == codec.PROTOCOL_ERROR


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (frame(0x20, b"\x00\x00\x03\x23\x00\x05"), "Topic Alias in CONNACK"),
        (frame(0x20, b"\x00\x00\x02\x05\x00"), "unknown property 0x05"),
        (frame(0x20, b"\x00\x00\x03\x21\x00\x00"), "Receive Maximum 0"),
        (frame(0x20, b"\x00\x00\x02\x24\x02"), "Maximum QoS 2"),
        (frame(0x20, b"\x00\x00\x05\x27\x00\x00\x00\x00"), "Maximum Packet Size 0"),
        (frame(0x20, b"\x01\x87\x00"), "session present on a refusal"),
        (frame(0x20, b"\x02\x00\x00"), "reserved CONNACK flag"),
        (frame(0x20, b"\x00\x42\x00"), "unknown CONNACK reason"),
        (frame(0x30, b"\x00\x01t\x03\x23\x00\x01x"), "topic alias never granted"),
        (frame(0x30, b"\x00\x00\x00x"), "empty topic without alias"),
        (frame(0x30, b"\x00\x02t\x00\x00x"), "topic with U+0000"),
        (frame(0x32, b"\x00\x01t\x00\x00\x00x"), "QoS 1 with packet id 0"),
        (frame(0x40, b"\x00\x00"), "PUBACK with packet id 0"),
        (frame(0x40, b"\x00\x01\x11"), "unknown PUBACK reason"),
        (frame(0x40, b"\x00\x01\x00\x00\xff"), "bytes after PUBACK properties"),
        (frame(0x90, b"\x00\x01\x00"), "SUBACK without reason codes"),
        (frame(0x90, b"\x00\x01\x00\x03"), "unknown SUBACK reason"),
        (frame(0xE0, b"\x04"), "DISCONNECT 0x04 is a client's"),
        (frame(0xE0, b"\x00\x05\x11\x00\x00\x00\x01"), "server DISCONNECT with session expiry"),
        (frame(0xD0, b"\x00"), "PINGRESP with a body"),
    ],
)
def test_malformed_and_forbidden_control_packets_are_refused(data: bytes, why: str) -> None:
    refused(data)


@settings(max_examples=300, deadline=None)
@given(packets=st.lists(server_packet(large=False), min_size=1, max_size=3), data=st.data())
def test_a_lying_remaining_length_never_escapes_as_another_error(
    packets: list[Any], data: Any
) -> None:
    """Bigger: the reader waits (incomplete); smaller: the fields no longer fit,
    or it parses as a shorter valid packet. Never IndexError and the like."""
    raw = ref.encode(packets[0])
    length, at = ref.decode_vbi(raw, 1)
    lie = data.draw(st.integers(0, length + 300).filter(lambda n: n != length))
    stream = raw[:1] + ref.encode_vbi(lie) + raw[at:] + b"".join(map(ref.encode, packets[1:]))
    try:
        decode_chunks([stream])
    except codec.ProtocolError:
        pass


@settings(max_examples=500, deadline=None)
@given(garbage=st.binary(max_size=300), data=st.data())
def test_arbitrary_bytes_give_packets_or_a_protocol_error_and_never_hang(
    garbage: bytes, data: Any
) -> None:
    cut = data.draw(st.integers(0, len(garbage)))
    try:
        decode_chunks([garbage[:cut], garbage[cut:]], max_packet=1024)
    except codec.ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(packet=server_packet(large=False), data=st.data())
def test_mutated_packets_give_packets_or_a_protocol_error(packet: Any, data: Any) -> None:
    raw = bytearray(ref.encode(packet))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        decode_chunks([bytes(raw)])
    except codec.ProtocolError:
        pass


def test_what_mqtt_cannot_say_is_refused_before_anything_is_sent() -> None:
    from stream_processor.bridge.mqtt_link import MqttLink
    from stream_processor.errors import ConfigError

    with pytest.raises(ConfigError):
        codec.PacketReader(codec.MIN_MAX_PACKET - 1)
    with pytest.raises(codec.ProtocolError):  # a string's length is 2 bytes
        codec.publish("t" * 65_536, b"", 0)
    for bad in ({"receive_maximum": 0}, {"receive_maximum": 65_536}, {"keepalive_s": 65_536},
                {"maximum_packet_size": 100}):  # fmt: skip
        with pytest.raises(ConfigError):
            MqttLink("127.0.0.1", 1, "c", "u", "p", lambda m: None, **bad)  # type: ignore[arg-type]
