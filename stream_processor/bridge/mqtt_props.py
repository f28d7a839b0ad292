"""MQTT v5 properties (spec 2.2.2): identifiers, value types, where each may appear.

Decoded properties are a dict ``{identifier: value}``; the two identifiers that
may repeat (User Property everywhere, Subscription Identifier in PUBLISH) map
to a tuple of their values in wire order. A User Property value is a
``(name, value)`` pair of strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from stream_processor.errors import BrokerError

BYTE, U16, U32, VARINT, UTF8, BINARY, PAIR = range(7)

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, DISCONNECT = 1, 2, 3, 4, 8, 9, 14
MALFORMED, PROTOCOL_ERROR, PACKET_TOO_LARGE = 0x81, 0x82, 0x95

USER_PROPERTY, SUBSCRIPTION_ID, TOPIC_ALIAS = 0x26, 0x0B, 0x23
SESSION_EXPIRY, SERVER_KEEP_ALIVE, RECEIVE_MAXIMUM, MAXIMUM_PACKET_SIZE = 0x11, 0x13, 0x21, 0x27

_ALL = frozenset({CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, DISCONNECT})

#: identifier -> (value type, packets that may carry it); spec table 2.2.2.2.
#: Will properties are left out: the bridge never sets a will.
SPEC: dict[int, tuple[int, frozenset[int]]] = {
    0x01: (BYTE, frozenset({PUBLISH})),  # Payload Format Indicator
    0x02: (U32, frozenset({PUBLISH})),  # Message Expiry Interval
    0x03: (UTF8, frozenset({PUBLISH})),  # Content Type
    0x08: (UTF8, frozenset({PUBLISH})),  # Response Topic
    0x09: (BINARY, frozenset({PUBLISH})),  # Correlation Data
    SUBSCRIPTION_ID: (VARINT, frozenset({PUBLISH, SUBSCRIBE})),
    SESSION_EXPIRY: (U32, frozenset({CONNECT, CONNACK, DISCONNECT})),
    0x12: (UTF8, frozenset({CONNACK})),  # Assigned Client Identifier
    SERVER_KEEP_ALIVE: (U16, frozenset({CONNACK})),
    0x15: (UTF8, frozenset({CONNECT, CONNACK})),  # Authentication Method
    0x16: (BINARY, frozenset({CONNECT, CONNACK})),  # Authentication Data
    0x17: (BYTE, frozenset({CONNECT})),  # Request Problem Information
    0x19: (BYTE, frozenset({CONNECT})),  # Request Response Information
    0x1A: (UTF8, frozenset({CONNACK})),  # Response Information
    0x1C: (UTF8, frozenset({CONNACK, DISCONNECT})),  # Server Reference
    0x1F: (UTF8, frozenset({CONNACK, PUBACK, SUBACK, DISCONNECT})),  # Reason String
    RECEIVE_MAXIMUM: (U16, frozenset({CONNECT, CONNACK})),
    0x22: (U16, frozenset({CONNECT, CONNACK})),  # Topic Alias Maximum
    TOPIC_ALIAS: (U16, frozenset({PUBLISH})),
    0x24: (BYTE, frozenset({CONNACK})),  # Maximum QoS
    0x25: (BYTE, frozenset({CONNACK})),  # Retain Available
    USER_PROPERTY: (PAIR, _ALL),
    MAXIMUM_PACKET_SIZE: (U32, frozenset({CONNECT, CONNACK})),
    0x28: (BYTE, frozenset({CONNACK})),  # Wildcard Subscription Available
    0x29: (BYTE, frozenset({CONNACK})),  # Subscription Identifier Available
    0x2A: (BYTE, frozenset({CONNACK})),  # Shared Subscription Available
}
REPEATABLE = frozenset({USER_PROPERTY, SUBSCRIPTION_ID})
#: Byte properties whose only values are 0 and 1 (a Maximum QoS of 2 is never sent).
_FLAG_BYTES = frozenset({0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A})
#: Properties for which 0 is a protocol error.
_NONZERO = frozenset({SUBSCRIPTION_ID, RECEIVE_MAXIMUM, TOPIC_ALIAS, MAXIMUM_PACKET_SIZE})

EMPTY: Mapping[int, Any] = MappingProxyType({})


class ProtocolError(BrokerError):
    """The peer sent bytes that are not MQTT v5 as we speak it.

    ``reason_code`` is what our DISCONNECT tells the peer before we close:
    0x81 malformed packet, 0x82 protocol error, 0x95 packet too large.
    """

    def __init__(self, message: str, reason_code: int = MALFORMED) -> None:
        super().__init__(message)
        self.reason_code = reason_code


def read_varint(buf: bytes, pos: int, stop: int) -> tuple[int, int]:
    """(value, position after it) of the variable byte integer at ``buf[pos]``."""
    value, shift = 0, 0
    for i in range(pos, min(pos + 4, stop)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > pos:
                raise ProtocolError("variable byte integer not in its shortest form")
            return value, i + 1
        shift += 7
    if stop - pos >= 4:
        raise ProtocolError("variable byte integer longer than 4 bytes")
    raise ProtocolError("truncated variable byte integer")


def read_utf8(buf: bytes, pos: int, stop: int) -> tuple[str, int]:
    """A UTF-8 string with its 2-byte length (spec 1.5.4); U+0000 is malformed."""
    end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1]) if pos + 2 <= stop else stop + 1
    if end > stop:
        raise ProtocolError("truncated string")
    try:
        text = buf[pos + 2 : end].decode()
    except UnicodeDecodeError:
        raise ProtocolError("string is not valid UTF-8") from None
    if "\x00" in text:
        raise ProtocolError("string contains U+0000")
    return text, end


def read_binary(buf: bytes, pos: int, stop: int) -> tuple[bytes, int]:
    end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1]) if pos + 2 <= stop else stop + 1
    if end > stop:
        raise ProtocolError("truncated binary data")
    return bytes(buf[pos + 2 : end]), end


def _read_value(kind: int, buf: bytes, pos: int, stop: int) -> tuple[Any, int]:
    if kind == UTF8:
        return read_utf8(buf, pos, stop)
    if kind == VARINT:
        return read_varint(buf, pos, stop)
    if kind == BINARY:
        return read_binary(buf, pos, stop)
    if kind == PAIR:
        name, pos = read_utf8(buf, pos, stop)
        value, pos = read_utf8(buf, pos, stop)
        return (name, value), pos
    size = 1 if kind == BYTE else 2 if kind == U16 else 4
    if pos + size > stop:
        raise ProtocolError("truncated property")
    return int.from_bytes(buf[pos : pos + size], "big"), pos + size


def parse(buf: bytes, pos: int, stop: int, packet_type: int) -> tuple[Mapping[int, Any], int]:
    """The properties at ``buf[pos]`` (length first) of a packet of ``packet_type``,
    and the position after them; refuses unknown, misplaced, repeated or
    out-of-range ones."""
    length, pos = read_varint(buf, pos, stop)
    end = pos + length
    if end > stop:
        raise ProtocolError("properties run past the packet")
    if not length:
        return EMPTY, pos
    out: dict[int, Any] = {}
    while pos < end:
        ident, pos = read_varint(buf, pos, end)
        spec = SPEC.get(ident)
        if spec is None or packet_type not in spec[1]:
            raise ProtocolError(f"property 0x{ident:02x} not allowed here", PROTOCOL_ERROR)
        value, pos = _read_value(spec[0], buf, pos, end)
        if (ident in _FLAG_BYTES and value > 1) or (ident in _NONZERO and value == 0):
            raise ProtocolError(f"property 0x{ident:02x} has value {value}", PROTOCOL_ERROR)
        if ident in REPEATABLE and (ident == USER_PROPERTY or packet_type == PUBLISH):
            out[ident] = (*out.get(ident, ()), value)
        elif ident in out:
            raise ProtocolError(f"property 0x{ident:02x} repeated", PROTOCOL_ERROR)
        else:
            out[ident] = value
    return out, end


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ProtocolError(f"string of {len(raw)} bytes; MQTT allows 65,535")
    return len(raw).to_bytes(2, "big") + raw


def encode(props: Mapping[int, Any]) -> bytes:
    """Properties with their length; repeatable ones given as a tuple of values."""
    out = bytearray()
    for ident, value in props.items():
        kind = SPEC[ident][0]
        values = value if ident == USER_PROPERTY or isinstance(value, tuple) else (value,)
        for v in values:
            out += varint(ident)
            if kind == UTF8:
                out += utf8(v)
            elif kind == VARINT:
                out += varint(v)
            elif kind == BINARY:
                out += len(v).to_bytes(2, "big") + v
            elif kind == PAIR:
                out += utf8(v[0]) + utf8(v[1])
            else:
                out += v.to_bytes(1 if kind == BYTE else 2 if kind == U16 else 4, "big")
    return varint(len(out)) + bytes(out)
