"""The few MQTT v5 packets a simulated gate needs, as bytes: CONNECT, PUBLISH (QoS 1
out, QoS 0/1 in), PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT, and a reader that splits a
byte stream into packets.

Why not paho: a paho client spends tens of microseconds of Python per QoS 1 message
(its own queue, lock and callbacks), so a 2-core machine cannot publish enough with
it to saturate the pipeline. Here a PUBLISH is one bytes join, and many go out in one
``send``. The edge agent itself keeps paho (``edge_agent.uplink``): a real gate
publishes a few events a second.
"""

from __future__ import annotations

from dataclasses import dataclass

CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP, DISCONNECT = 2, 3, 4, 9, 13, 14
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"

#: CONNACK property ids this client reads.
_RECEIVE_MAXIMUM = 0x21
#: Sizes of the fixed-size MQTT v5 properties (MQTT v5 §2.2.2.2), to skip the others.
_FIXED = {
    **dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), 1),
    **dict.fromkeys((0x13, 0x21, 0x22, 0x23), 2),
    **dict.fromkeys((0x02, 0x11, 0x18, 0x27), 4),
}
_STRINGS = frozenset((0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F))


class MqttProtocolError(ValueError):
    """The broker sent bytes that are not the MQTT v5 this client expects."""


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    for _ in range(4):
        if pos >= len(data):
            raise IndexError
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise MqttProtocolError("variable byte integer longer than 4 bytes")


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def connect_packet(
    client_id: str, username: str, password: str, keepalive_s: int, session_expiry_s: int
) -> bytes:
    """CONNECT with clean_start=False: the device's session (and the command
    subscriptions registration opened in it) is kept."""
    props = b"\x11" + session_expiry_s.to_bytes(4, "big")
    body = (
        b"\x00\x04MQTT\x05"
        + bytes([0x80 | 0x40])  # username, password; clean start off
        + keepalive_s.to_bytes(2, "big")
        + varint(len(props)) + props
        + _string(client_id.encode())
        + _string(username.encode())
        + _string(password.encode())
    )  # fmt: skip
    return b"\x10" + varint(len(body)) + body


def subscribe_packet(packet_id: int, topic: str, qos: int) -> bytes:
    body = packet_id.to_bytes(2, "big") + b"\x00" + _string(topic.encode()) + bytes([qos])
    return b"\x82" + varint(len(body)) + body


def puback_packet(packet_id: int) -> bytes:
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


def publish_parts(topic: str) -> bytes:
    """The topic as it starts a PUBLISH's variable header (built once per device)."""
    return _string(topic.encode())


def publish_packet(topic_part: bytes, packet_id: int, payload: bytes) -> bytes:
    """A QoS 1 PUBLISH with no properties."""
    length = len(topic_part) + 3 + len(payload)
    # An event is a few hundred bytes: a 2-byte length without the general loop.
    size = bytes((length & 0x7F | 0x80, length >> 7)) if 128 <= length < 16384 else varint(length)
    return b"".join((b"\x32", size, topic_part, packet_id.to_bytes(2, "big"), b"\x00", payload))


@dataclass(frozen=True, slots=True)
class Packet:
    kind: int
    flags: int
    body: bytes


def take_pubacks(buffer: bytearray) -> list[int]:
    """Take the successful PUBACKs without properties (what Mosquitto sends for almost
    every event: reason 0, or 0x10 "no subscribers") off the front of ``buffer``;
    returns their packet ids. What follows them goes through ``split_packets``."""
    ids: list[int] = []
    pos, size = 0, len(buffer)
    while pos + 4 <= size and buffer[pos] == 0x40:
        length = buffer[pos + 1]
        if length == 2:
            pass
        elif length == 3 and pos + 5 <= size and buffer[pos + 4] < 0x80:
            pass
        else:
            break
        ids.append(buffer[pos + 2] << 8 | buffer[pos + 3])
        pos += 2 + length
    del buffer[:pos]
    return ids


def split_packets(buffer: bytearray, limit: int = 0) -> list[Packet]:
    """Take every complete packet (at most ``limit`` when > 0) off the front of
    ``buffer``; an incomplete one stays."""
    packets: list[Packet] = []
    pos = 0
    end = len(buffer)
    view = memoryview(buffer)
    try:
        while pos + 2 <= end:
            try:
                length, start = _read_varint(view, pos + 1)
            except IndexError:
                break
            if start + length > end:
                break
            first = buffer[pos]
            packets.append(Packet(first >> 4, first & 0x0F, bytes(view[start : start + length])))
            pos = start + length
            if len(packets) == limit:
                break
    finally:
        view.release()
    del buffer[:pos]
    return packets


def connack(body: bytes) -> tuple[int, int]:
    """(reason code, the broker's Receive Maximum: how many QoS 1 PUBLISHes may be
    unacknowledged at once; 65535 when it names none)."""
    if len(body) < 2:
        raise MqttProtocolError("short CONNACK")
    reason = body[1]
    receive_max = 65535
    if len(body) > 2:
        length, pos = _read_varint(body, 2)
        end = pos + length
        while pos < end:
            prop = body[pos]
            pos += 1
            if prop == _RECEIVE_MAXIMUM:
                receive_max = int.from_bytes(body[pos : pos + 2], "big")
            if prop in _FIXED:
                pos += _FIXED[prop]
            elif prop in _STRINGS:
                pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
            elif prop == 0x26:  # user property: two strings
                for _ in range(2):
                    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
            elif prop == 0x0B:
                _, pos = _read_varint(body, pos)
            else:
                raise MqttProtocolError(f"unknown CONNACK property {prop:#x}")
    return reason, max(1, receive_max)


def puback(body: bytes) -> tuple[int, int]:
    """(packet id, reason code: 0 success, ≥ 0x80 refused)."""
    if len(body) < 2:
        raise MqttProtocolError("short PUBACK")
    return int.from_bytes(body[:2], "big"), body[2] if len(body) > 2 else 0


def incoming_publish(flags: int, body: bytes) -> tuple[str, int | None, bytes]:
    """(topic, packet id when QoS > 0, payload) of a PUBLISH from the broker."""
    tlen = int.from_bytes(body[:2], "big")
    topic = body[2 : 2 + tlen].decode("utf-8", "replace")
    pos = 2 + tlen
    packet_id = None
    if (flags >> 1) & 0x03:
        packet_id = int.from_bytes(body[pos : pos + 2], "big")
        pos += 2
    plen, pos = _read_varint(body, pos)
    return topic, packet_id, body[pos + plen :]
