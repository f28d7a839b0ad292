"""The MQTT v5 packets a bridge needs, encoded and decoded as plain bytes (no I/O).

Only what the bridge uses: CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH (both
ways, QoS 0/1), PUBACK, PINGREQ/PINGRESP, DISCONNECT. The bridge never asks
for topic aliases, so incoming PUBLISH packets always carry their topic.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from stream_processor.errors import BrokerError

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

PINGREQ_PACKET = b"\xc0\x00"
#: Largest packet the bridge accepts from the broker (payloads over the bridge's
#: own limit are dead-lettered; this only guards against a broken peer).
MAX_PACKET = 16 * 1024 * 1024

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class ProtocolError(BrokerError):
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


class Packet(NamedTuple):
    """Any other incoming packet, body not parsed."""

    type: int
    flags: int
    body: bytes


_tuple_new = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path
_LARGE = 1 << 16


class PacketReader:
    """Splits a byte stream into packets; PUBLISH packets come out parsed.

    PUBLISH is parsed in the same pass as the framing, straight from the
    received bytes (one copy of the payload, no intermediate body): it is the
    one packet that arrives tens of thousands of times a second.
    """

    def __init__(self) -> None:
        self._rest = b""  # the incomplete tail of what was received
        # Instead, a large incomplete packet is collected in a bytearray (appending to
        # bytes would copy all of it on every read) until it has _need bytes.
        self._large: bytearray | None = None
        self._need = 0

    def feed(self, data: bytes) -> list[Publish | Packet]:
        """Every whole packet in what was received so far; keeps the incomplete tail."""
        if self._large is not None:
            self._large += data
            if len(self._large) < self._need:
                return []
            buf, self._large, self._need = bytes(self._large), None, 0
        else:
            buf = self._rest + data if self._rest else data
        pos, end = 0, len(buf)
        out: list[Publish | Packet] = []
        append = out.append
        try:
            while end - pos >= 2:
                first = buf[pos]
                length = buf[pos + 1]
                i = pos + 2
                if length & 0x80:  # a multi-byte remaining length
                    length, shift, i = 0, 0, pos + 1
                    while True:
                        if i >= end:
                            return out
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
                stop = i + length
                if stop > end:
                    if stop - pos > _LARGE:
                        self._need = stop - pos
                    return out
                if first >> 4 == PUBLISH:
                    append(_parse_publish(buf, i, stop, first))
                else:
                    append(_tuple_new(Packet, (first >> 4, first & 0x0F, buf[i:stop])))
                pos = stop
            return out
        finally:
            if self._need:
                self._large, self._rest = bytearray(buf[pos:]), b""
            else:
                self._rest = buf[pos:]


def _parse_publish(buf: bytes, i: int, stop: int, first: int) -> Publish:
    """The PUBLISH whose body is ``buf[i:stop]`` (``first``: its fixed-header byte)."""
    try:
        tlen = (buf[i] << 8) | buf[i + 1]
        pos = i + 2 + tlen
        topic = buf[i + 2 : pos].decode("utf-8", errors="replace")
        qos = (first >> 1) & 0x03
        packet_id = 0
        if qos:
            packet_id = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
        pos = pos + 1 if buf[pos] == 0 else _skip_props(buf, pos)  # usually no properties
    except IndexError as exc:
        raise ProtocolError("truncated PUBLISH") from exc
    if pos > stop:
        raise ProtocolError("truncated PUBLISH")
    return _tuple_new(Publish, (topic, buf[pos:stop], qos, packet_id, bool(first & 0x08)))


def _skip_props(body: bytes, pos: int) -> int:
    length, shift = 0, 0
    while True:
        byte = body[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return pos + length
        shift += 7


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
