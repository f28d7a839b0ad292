"""Parsing of the MQTT v5 control packets a server sends a client (spec chapter 3):
CONNACK, PUBACK, SUBACK, DISCONNECT, PINGRESP. Bodies come from ``mqtt_codec.PacketReader``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from stream_processor.bridge import mqtt_props as props
from stream_processor.bridge.mqtt_props import (
    CONNACK,
    DISCONNECT,
    EMPTY,
    PROTOCOL_ERROR,
    PUBACK,
    SUBACK,
    ProtocolError,
)

CONNACK_CODES = frozenset(
    {0x00, *range(0x80, 0x8B), 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}
)
PUBACK_CODES = frozenset({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})
SUBACK_CODES = frozenset({0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2})
DISCONNECT_CODES = frozenset(
    {0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, *range(0x8D, 0x91), *range(0x93, 0xA3)}
)


class ConnAck(NamedTuple):
    session_present: bool
    reason: int
    properties: Mapping[int, Any]


class Ack(NamedTuple):
    """A PUBACK (``reasons`` has one code) or a SUBACK (one per filter)."""

    packet_id: int
    reasons: tuple[int, ...]
    properties: Mapping[int, Any]


class Disconnect(NamedTuple):
    reason: int
    properties: Mapping[int, Any]


def _packet_id(body: bytes, what: str) -> int:
    packet_id = (body[0] << 8) | body[1]
    if not packet_id:
        raise ProtocolError(f"{what} with packet id 0", PROTOCOL_ERROR)
    return packet_id


def _trailing_properties(body: bytes, pos: int, packet_type: int) -> Mapping[int, Any]:
    properties, end = props.parse(body, pos, len(body), packet_type)
    if end != len(body):
        raise ProtocolError("bytes after the properties")
    return properties


def _check_code(code: int, allowed: frozenset[int], what: str) -> int:
    if code not in allowed:
        raise ProtocolError(f"{what} reason code 0x{code:02x}", PROTOCOL_ERROR)
    return code


def parse_connack(body: bytes) -> ConnAck:
    if len(body) < 3:
        raise ProtocolError("truncated CONNACK")
    if body[0] & 0xFE:
        raise ProtocolError(f"CONNACK flags 0x{body[0]:02x}")
    reason = _check_code(body[1], CONNACK_CODES, "CONNACK")
    if body[0] and reason >= 0x80:
        raise ProtocolError("CONNACK refuses yet says session present", PROTOCOL_ERROR)
    return ConnAck(bool(body[0]), reason, _trailing_properties(body, 2, CONNACK))


def parse_puback(body: bytes) -> Ack:
    """A bare PUBACK (packet id only) means success."""
    if len(body) < 2:
        raise ProtocolError("truncated PUBACK")
    packet_id = _packet_id(body, "PUBACK")
    if len(body) == 2:
        return Ack(packet_id, (0,), EMPTY)
    reason = _check_code(body[2], PUBACK_CODES, "PUBACK")
    properties = EMPTY if len(body) == 3 else _trailing_properties(body, 3, PUBACK)
    return Ack(packet_id, (reason,), properties)


def parse_suback(body: bytes) -> Ack:
    if len(body) < 4:
        raise ProtocolError("truncated SUBACK")
    packet_id = _packet_id(body, "SUBACK")
    properties, pos = props.parse(body, 2, len(body), SUBACK)
    if pos >= len(body):
        raise ProtocolError("SUBACK without reason codes")
    codes = tuple(_check_code(c, SUBACK_CODES, "SUBACK") for c in body[pos:])
    return Ack(packet_id, codes, properties)


def parse_disconnect(body: bytes) -> Disconnect:
    if not body:
        return Disconnect(0, EMPTY)
    reason = _check_code(body[0], DISCONNECT_CODES, "DISCONNECT")
    properties = EMPTY if len(body) == 1 else _trailing_properties(body, 1, DISCONNECT)
    if props.SESSION_EXPIRY in properties:  # spec 3.14.2.2.2: only a client sends it
        raise ProtocolError("server DISCONNECT with a session expiry", PROTOCOL_ERROR)
    return Disconnect(reason, properties)


def parse_pingresp(body: bytes) -> None:
    if body:
        raise ProtocolError("PINGRESP with a body")
