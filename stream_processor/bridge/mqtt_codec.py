"""The MQTT v5 packets a bridge needs, encoded and decoded as plain bytes (no I/O).

Only what the bridge uses: CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH (both
ways, QoS 0/1), PUBACK, PINGREQ/PINGRESP, DISCONNECT. The bridge never asks
for topic aliases, so incoming PUBLISH packets always carry their topic.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

PINGREQ_PACKET = b"\xc0\x00"
#: Largest packet the bridge accepts from the broker (payloads over the bridge's
#: own limit are dead-lettered; this only guards against a broken peer).
MAX_PACKET = 16 * 1024 * 1024

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class ProtocolError(Exception):
    """The peer sent bytes that are not MQTT v5 as we speak it."""


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


def connect(
    client_id: str,
    username: str,
    password: str,
    keepalive_s: int,
    session_expiry_s: int,
    receive_maximum: int,
    clean_start: bool = False,
) -> bytes:
    props = b"\x11" + _U32.pack(session_expiry_s) + b"\x21" + _U16.pack(receive_maximum)
    flags = 0x80 | 0x40 | (0x02 if clean_start else 0)
    body = (
        _utf8("MQTT")
        + bytes((5, flags))
        + _U16.pack(keepalive_s)
        + varint(len(props))
        + props
        + _utf8(client_id)
        + _utf8(username)
        + _utf8(password)
    )
    return _packet(CONNECT << 4, body)


def subscribe(packet_id: int, filters: list[str], qos: int = 1) -> bytes:
    body = _U16.pack(packet_id) + varint(0) + b"".join(_utf8(f) + bytes((qos,)) for f in filters)
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def puback(packet_id: int) -> bytes:
    # MQTT v5 3.4.2.1: reason code and properties may be left out when success.
    return b"\x40\x02" + _U16.pack(packet_id)


def publish(topic: str, payload: bytes, qos: int, packet_id: int = 0, dup: bool = False) -> bytes:
    first = (PUBLISH << 4) | (qos << 1) | (0x08 if dup else 0)
    body = _utf8(topic) + (_U16.pack(packet_id) if qos else b"") + varint(0) + payload
    return _packet(first, body)


def disconnect(reason: int = 0) -> bytes:
    return b"\xe0\x01" + bytes((reason,))


class Publish(NamedTuple):
    """One incoming PUBLISH (a NamedTuple: built once per message, so it must be cheap)."""

    topic: str
    payload: bytes
    qos: int
    packet_id: int
    dup: bool


class PacketReader:
    """Splits a byte stream into (packet type, flags, body) triples."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, int, bytes]]:
        buf = self._buf
        buf += data
        pos, end = 0, len(buf)
        try:
            while end - pos >= 2:
                first = buf[pos]
                length, shift, i = 0, 0, pos + 1
                while True:
                    if i >= end:
                        return
                    byte = buf[i]
                    length |= (byte & 0x7F) << shift
                    i += 1
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise ProtocolError("malformed remaining length")
                if length > MAX_PACKET:
                    raise ProtocolError(f"packet of {length} bytes")
                if end - i < length:
                    return
                yield first >> 4, first & 0x0F, bytes(buf[i : i + length])
                pos = i + length
        finally:
            del buf[:pos]


def _skip_props(body: bytes, pos: int) -> int:
    length, shift = 0, 0
    while True:
        byte = body[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return pos + length
        shift += 7


def parse_publish(flags: int, body: bytes) -> Publish:
    try:
        tlen = (body[0] << 8) | body[1]
        topic = body[2 : 2 + tlen].decode("utf-8", errors="replace")
        pos = 2 + tlen
        qos = (flags >> 1) & 0x03
        packet_id = 0
        if qos:
            packet_id = (body[pos] << 8) | body[pos + 1]
            pos += 2
        pos = _skip_props(body, pos)
        return Publish(topic, body[pos:], qos, packet_id, bool(flags & 0x08))
    except IndexError as exc:
        raise ProtocolError("truncated PUBLISH") from exc


def parse_connack(body: bytes) -> tuple[bool, int]:
    """(session present, reason code)."""
    if len(body) < 2:
        raise ProtocolError("truncated CONNACK")
    return bool(body[0] & 0x01), body[1]


def parse_ack(body: bytes) -> tuple[int, list[int]]:
    """PUBACK or SUBACK: (packet id, reason codes). A bare PUBACK means success."""
    if len(body) < 2:
        raise ProtocolError("truncated ack")
    packet_id = (body[0] << 8) | body[1]
    if len(body) == 2:
        return packet_id, [0]
    return packet_id, [body[2]]


def parse_suback(body: bytes) -> tuple[int, list[int]]:
    if len(body) < 3:
        raise ProtocolError("truncated SUBACK")
    packet_id = (body[0] << 8) | body[1]
    pos = _skip_props(body, 2)
    return packet_id, list(body[pos:])


def parse_disconnect(body: bytes) -> int:
    return body[0] if len(body) else 0
