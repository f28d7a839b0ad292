"""The MQTT v5 packets a bridge needs, encoded and decoded as plain bytes (no I/O).

Only what the bridge uses: CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH (both
ways, QoS 0/1), PUBACK, PINGREQ/PINGRESP, DISCONNECT. The bridge never grants
topic aliases, so an incoming PUBLISH must carry its topic. Anything else, or
anything malformed, raises ``ProtocolError`` (never IndexError or
UnicodeDecodeError): the link then disconnects with its reason code.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

from stream_processor.bridge import mqtt_props as props
from stream_processor.bridge.mqtt_control import (
    Ack,
    ConnAck,
    Disconnect,
    parse_connack,
    parse_disconnect,
    parse_pingresp,
    parse_puback,
    parse_suback,
)
from stream_processor.bridge.mqtt_props import (
    EMPTY,
    MALFORMED,
    PACKET_TOO_LARGE,
    PROTOCOL_ERROR,
    ProtocolError,
    varint,
)
from stream_processor.errors import ConfigError

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

PINGREQ_PACKET = b"\xc0\x00"
#: Largest packet the bridge accepts from the broker by default, announced in
#: CONNECT as Maximum Packet Size (payloads over the bridge's own limit are
#: dead-lettered, so they must still arrive; this only guards against a broken peer).
MAX_PACKET = 16 * 1024 * 1024
#: Smallest Maximum Packet Size a reader accepts: one-byte remaining lengths
#: (packets up to 129 bytes) are framed without a size check.
MIN_MAX_PACKET = 256

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

#: First bytes (type and fixed flags) of the non-PUBLISH packets a server may send
#: this client: no QoS 2 flow, no UNSUBACK (we never unsubscribe), no AUTH (no
#: authentication method); those would be protocol errors, and are refused here.
_SERVER_FIRST = frozenset({0x20, 0x40, 0x90, 0xD0, 0xE0})
#: The well-formed rest, refused as protocol errors rather than malformed packets.
_WELL_FORMED = frozenset({0x10, 0x50, 0x62, 0x70, 0x82, 0xA2, 0xB0, 0xC0, 0xF0})
#: PUBLISH first bytes we accept -> QoS: QoS 0 (no DUP) or 1, RETAIN either way.
_PUBLISH_QOS = {0x30: 0, 0x31: 0, 0x32: 1, 0x33: 1, 0x3A: 1, 0x3B: 1}


_utf8 = props.utf8  # refuses a string over 65,535 bytes with ProtocolError


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
    maximum_packet_size: int = MAX_PACKET,
) -> bytes:
    properties = props.encode(
        {
            props.SESSION_EXPIRY: session_expiry_s,
            props.RECEIVE_MAXIMUM: receive_maximum,
            props.MAXIMUM_PACKET_SIZE: maximum_packet_size,
        }
    )
    flags = 0x80 | 0x40 | (0x02 if clean_start else 0)
    body = (
        _utf8("MQTT")
        + bytes((5, flags))
        + _U16.pack(keepalive_s)
        + properties
        + _utf8(client_id)
        + _utf8(username)
        + _utf8(password)
    )
    return _packet(CONNECT << 4, body)


def subscribe(packet_id: int, filters: list[str], qos: int = 1) -> bytes:
    body = _U16.pack(packet_id) + varint(0) + b"".join(_utf8(f) + bytes((qos,)) for f in filters)
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def puback(packet_id: int, reason: int = 0) -> bytes:
    # MQTT v5 3.4.2.1: reason code and properties may be left out on success.
    if reason == 0:
        return b"\x40\x02" + _U16.pack(packet_id)
    return b"\x40\x03" + _U16.pack(packet_id) + bytes((reason,))


def publish(
    topic: str,
    payload: bytes,
    qos: int,
    packet_id: int = 0,
    dup: bool = False,
    retain: bool = False,
    properties: Mapping[int, Any] = EMPTY,
) -> bytes:
    first = (PUBLISH << 4) | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    encoded = props.encode(properties) if properties else b"\x00"
    body = _utf8(topic) + (_U16.pack(packet_id) if qos else b"") + encoded + payload
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
    retain: bool = False
    properties: Mapping[int, Any] = EMPTY


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

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        if not MIN_MAX_PACKET <= max_packet <= 0xFFFFFFFF:
            raise ConfigError(f"maximum packet size {max_packet} outside {MIN_MAX_PACKET}..2^32-1")
        self._max = max_packet
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
        append, max_packet = out.append, self._max
        try:
            while end - pos >= 2:
                first = buf[pos]
                length = buf[pos + 1]
                i = pos + 2
                if length & 0x80:  # a multi-byte remaining length (inline: hot)
                    if end - pos > 2 and not buf[pos + 2] & 0x80:
                        if not buf[pos + 2]:
                            raise ProtocolError("remaining length not in its shortest form")
                        length, i = (length & 0x7F) | (buf[pos + 2] << 7), pos + 3
                    else:
                        length, i = _remaining_length(buf, pos + 1, end)
                        if length < 0:
                            return out
                    if i - pos + length > max_packet:
                        raise ProtocolError(
                            f"packet of {i - pos + length} bytes, over the maximum of {self._max}",
                            PACKET_TOO_LARGE,
                        )
                stop = i + length
                if stop > end:
                    if stop - pos > _LARGE:
                        self._need = stop - pos
                    return out
                if first >> 4 == PUBLISH:
                    append(_parse_publish(buf, i, stop, first))
                elif first in _SERVER_FIRST:
                    append(_tuple_new(Packet, (first >> 4, first & 0x0F, buf[i:stop])))
                else:
                    raise ProtocolError(
                        f"a packet starting 0x{first:02x} from the server",
                        PROTOCOL_ERROR if first in _WELL_FORMED else MALFORMED,
                    )
                pos = stop
            return out
        finally:
            if self._need:
                self._large, self._rest = bytearray(buf[pos:]), b""
            else:
                self._rest = buf[pos:]


def _remaining_length(buf: bytes, p: int, end: int) -> tuple[int, int]:
    """(length, position after it) of the multi-byte remaining length at ``buf[p]``;
    (-1, 0) while incomplete."""
    length, shift = 0, 0
    for i in range(p, p + 4):
        if i >= end:
            return -1, 0
        byte = buf[i]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0:
                raise ProtocolError("remaining length not in its shortest form")
            return length, i + 1
        shift += 7
    raise ProtocolError("remaining length longer than 4 bytes")


def _parse_publish(buf: bytes, i: int, stop: int, first: int) -> Publish:
    """The PUBLISH whose body is ``buf[i:stop]`` (``first``: its fixed-header byte).

    Every index stays below ``stop``: bytes past it belong to the next packet.
    """
    qos = _PUBLISH_QOS.get(first)
    if qos is None:
        code = MALFORMED if first & 0x06 == 0x06 else PROTOCOL_ERROR
        raise ProtocolError(f"PUBLISH with flags 0x{first & 0x0F:x}", code)
    tend = i + 2 + ((buf[i] << 8) | buf[i + 1]) if stop - i > 2 else stop
    if qos:
        pos = tend + 2
        if pos >= stop:  # the property length must be inside too
            raise ProtocolError("truncated PUBLISH")
        packet_id = (buf[tend] << 8) | buf[tend + 1]
        if not packet_id:
            raise ProtocolError("PUBLISH with packet id 0", PROTOCOL_ERROR)
    else:
        pos, packet_id = tend, 0
        if pos >= stop:
            raise ProtocolError("truncated PUBLISH")
    try:
        topic = buf[i + 2 : tend].decode()
    except UnicodeDecodeError:
        raise ProtocolError("PUBLISH topic is not valid UTF-8") from None
    if not topic or "\x00" in topic:
        raise ProtocolError(f"PUBLISH topic {topic!r}: empty (no alias was granted) or with U+0000")
    if buf[pos] == 0:  # usually no properties
        pos += 1
        properties = EMPTY
    else:
        properties, pos = props.parse(buf, pos, stop, PUBLISH)
        if props.TOPIC_ALIAS in properties:
            raise ProtocolError("topic alias, which was never granted", PROTOCOL_ERROR)
    return _tuple_new(
        Publish,
        (topic, buf[pos:stop], qos, packet_id, bool(first & 0x08), bool(first & 0x01), properties),
    )


__all__ = [
    "MALFORMED",
    "PACKET_TOO_LARGE",
    "PROTOCOL_ERROR",
    "Ack",
    "ConnAck",
    "Disconnect",
    "ProtocolError",
    "parse_connack",
    "parse_disconnect",
    "parse_puback",
    "parse_pingresp",
    "parse_suback",
    "varint",
]
