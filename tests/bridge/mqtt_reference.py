"""An MQTT 5.0 encoder and decoder written from the OASIS specification for the tests,
independent of ``stream_processor.bridge.mqtt_*`` (it imports nothing from there).

Packets are plain dicts: ``{"type": "publish", "topic": ..., ...}``; properties
are ``{identifier: value}``, with User Property (0x26) and, in PUBLISH,
Subscription Identifier (0x0B) as a tuple of every value in wire order.
Section numbers refer to the MQTT Version 5.0 OASIS Standard (7 March 2019).
"""

from __future__ import annotations

from typing import Any

# 2.2.2.2: identifier -> (data type, packets it may appear in)
PROPERTY_TYPES: dict[int, tuple[str, set[str]]] = {
    1: ("byte", {"publish"}),
    2: ("four", {"publish"}),
    3: ("utf8", {"publish"}),
    8: ("utf8", {"publish"}),
    9: ("binary", {"publish"}),
    11: ("vbi", {"publish", "subscribe"}),
    17: ("four", {"connect", "connack", "disconnect"}),
    18: ("utf8", {"connack"}),
    19: ("two", {"connack"}),
    21: ("utf8", {"connect", "connack"}),
    22: ("binary", {"connect", "connack"}),
    23: ("byte", {"connect"}),
    25: ("byte", {"connect"}),
    26: ("utf8", {"connack"}),
    28: ("utf8", {"connack", "disconnect"}),
    31: ("utf8", {"connack", "puback", "suback", "disconnect"}),
    33: ("two", {"connect", "connack"}),
    34: ("two", {"connect", "connack"}),
    35: ("two", {"publish"}),
    36: ("byte", {"connack"}),
    37: ("byte", {"connack"}),
    38: ("pair", {"connect", "connack", "publish", "puback", "subscribe", "suback", "disconnect"}),
    39: ("four", {"connect", "connack"}),
    40: ("byte", {"connack"}),
    41: ("byte", {"connack"}),
    42: ("byte", {"connack"}),
}
PACKET_TYPE = {
    "connect": 1, "connack": 2, "publish": 3, "puback": 4,
    "subscribe": 8, "suback": 9, "pingreq": 12, "pingresp": 13, "disconnect": 14,
}  # fmt: skip
TYPE_NAME = {v: k for k, v in PACKET_TYPE.items()}


class Malformed(Exception):
    """The bytes are not a well-formed MQTT 5.0 packet (the reference decoder's verdict)."""


# -- data representations (1.5) -------------------------------------------------------
def encode_vbi(x: int) -> bytes:
    """1.5.5, the specification's own algorithm."""
    assert 0 <= x <= 268_435_455
    out = []
    while True:
        encoded_byte = x % 128
        x = x // 128
        if x > 0:
            encoded_byte = encoded_byte | 128
        out.append(encoded_byte)
        if x <= 0:
            return bytes(out)


def decode_vbi(data: bytes, at: int) -> tuple[int, int]:
    """1.5.5, the specification's own algorithm (multiplier form)."""
    multiplier, value = 1, 0
    while True:
        if at >= len(data):
            raise Malformed("truncated variable byte integer")
        encoded_byte = data[at]
        at += 1
        value += (encoded_byte & 127) * multiplier
        if multiplier > 128 * 128 * 128:
            raise Malformed("variable byte integer over 4 bytes")
        multiplier *= 128
        if (encoded_byte & 128) == 0:
            return value, at


def encode_string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return bytes([len(raw) >> 8, len(raw) & 255]) + raw


def encode_binary(b: bytes) -> bytes:
    return bytes([len(b) >> 8, len(b) & 255]) + b


def _take(data: bytes, at: int, n: int) -> tuple[bytes, int]:
    if at + n > len(data):
        raise Malformed("truncated")
    return data[at : at + n], at + n


def _int(data: bytes, at: int, n: int) -> tuple[int, int]:
    raw, at = _take(data, at, n)
    return int.from_bytes(raw, "big"), at


def decode_string(data: bytes, at: int) -> tuple[str, int]:
    n, at = _int(data, at, 2)
    raw, at = _take(data, at, n)
    try:
        return raw.decode("utf-8"), at
    except UnicodeDecodeError as exc:
        raise Malformed("bad UTF-8") from exc


# -- properties (2.2.2) -----------------------------------------------------------------
def encode_properties(props: dict[int, Any]) -> bytes:
    items = []
    for ident, value in props.items():
        kind = PROPERTY_TYPES[ident][0]
        many = ident == 38 or (isinstance(value, tuple) and kind != "pair")
        items += [(ident, v) for v in (value if many else [value])]
    return encode_property_list(items)


def encode_property_list(items: list[tuple[int, Any]]) -> bytes:
    """Properties in the given order, repeats and all, with their length (2.2.2.1)."""
    body = b""
    for ident, v in items:
        kind = PROPERTY_TYPES[ident][0]
        body += encode_vbi(ident)
        if kind == "byte":
            body += bytes([v])
        elif kind == "two":
            body += v.to_bytes(2, "big")
        elif kind == "four":
            body += v.to_bytes(4, "big")
        elif kind == "vbi":
            body += encode_vbi(v)
        elif kind == "utf8":
            body += encode_string(v)
        elif kind == "binary":
            body += encode_binary(v)
        else:
            body += encode_string(v[0]) + encode_string(v[1])
    return encode_vbi(len(body)) + body


def decode_properties(data: bytes, at: int, packet: str) -> tuple[dict[int, Any], int]:
    length, at = decode_vbi(data, at)
    end = at + length
    if end > len(data):
        raise Malformed("properties past the end")
    out: dict[int, Any] = {}
    while at < end:
        ident, at = decode_vbi(data, at)
        kind, where = PROPERTY_TYPES.get(ident, ("", set()))
        v: Any
        if packet not in where:
            raise Malformed(f"property {ident} not allowed in {packet}")
        if kind in ("byte", "two", "four"):
            v, at = _int(data, at, {"byte": 1, "two": 2, "four": 4}[kind])
        elif kind == "vbi":
            v, at = decode_vbi(data, at)
        elif kind == "utf8":
            v, at = decode_string(data, at)
        elif kind == "binary":
            n, at = _int(data, at, 2)
            v, at = _take(data, at, n)
        else:
            k, at = decode_string(data, at)
            s, at = decode_string(data, at)
            v = (k, s)
        if ident == 38 or (ident == 11 and packet == "publish"):
            out[ident] = out.get(ident, ()) + (v,)
        elif ident in out:
            raise Malformed(f"property {ident} repeated")
        else:
            out[ident] = v
    if at != end:
        raise Malformed("property overruns the property length")
    return out, end


# -- packets a server sends (the codec decodes them) ------------------------------------
def encode(packet: dict[str, Any]) -> bytes:
    """The fixed header (2.1) and body of ``packet``."""
    kind = packet["type"]
    flags = 0
    if kind == "connack":
        body = bytes([int(packet["session_present"]), packet["reason"]])
        body += encode_properties(packet["props"])
    elif kind == "publish":
        flags = packet["dup"] << 3 | packet["qos"] << 1 | packet["retain"]
        body = encode_string(packet["topic"])
        if packet["qos"] > 0:
            body += packet["packet_id"].to_bytes(2, "big")
        body += encode_properties(packet["props"]) + packet["payload"]
    elif kind in ("puback", "disconnect"):
        body = packet["packet_id"].to_bytes(2, "big") if kind == "puback" else b""
        if packet["reason"] != 0 or packet["props"] or packet.get("long_form"):
            body += bytes([packet["reason"]])
            if packet["props"] or packet.get("long_form"):
                body += encode_properties(packet["props"])
    elif kind == "suback":
        body = packet["packet_id"].to_bytes(2, "big") + encode_properties(packet["props"])
        body += bytes(packet["reasons"])
    elif kind == "pingresp":
        body = b""
    else:
        raise ValueError(kind)
    return bytes([PACKET_TYPE[kind] << 4 | flags]) + encode_vbi(len(body)) + body


# -- packets a client sends (the codec encodes them) ------------------------------------
def decode(data: bytes) -> tuple[dict[str, Any], int]:
    """One packet from the start of ``data`` and its length."""
    if len(data) < 2:
        raise Malformed("no fixed header")
    first = data[0]
    length, at = decode_vbi(data, 1)
    end = at + length
    if end > len(data):
        raise Malformed("remaining length past the end")
    kind = TYPE_NAME.get(first >> 4, "?")
    body = data[at:end]
    expected = {"subscribe": 2, "publish": first & 15}.get(kind, 0)
    if first & 15 != expected:
        raise Malformed("fixed header flags")
    return _BODY[kind](body, first & 15), end


def _connect(body: bytes, _flags: int) -> dict[str, Any]:
    name, at = decode_string(body, 0)
    level, at = _int(body, at, 1)
    flags, at = _int(body, at, 1)
    keepalive, at = _int(body, at, 2)
    props, at = decode_properties(body, at, "connect")
    client_id, at = decode_string(body, at)
    if flags & 0x04:
        raise Malformed("the bridge never sets a will")
    out: dict[str, Any] = {
        "type": "connect", "protocol": name, "level": level, "clean_start": bool(flags & 2),
        "keepalive": keepalive, "props": props, "client_id": client_id,
    }  # fmt: skip
    if flags & 0x80:
        out["username"], at = decode_string(body, at)
    if flags & 0x40:
        size, at = _int(body, at, 2)
        out["password"], at = _take(body, at, size)
    if at != len(body) or flags & 0x01:
        raise Malformed("CONNECT trailing bytes or reserved flag")
    return out


def _subscribe(body: bytes, _flags: int) -> dict[str, Any]:
    packet_id, at = _int(body, 0, 2)
    props, at = decode_properties(body, at, "subscribe")
    filters = []
    while at < len(body):
        topic, at = decode_string(body, at)
        options, at = _int(body, at, 1)
        filters.append((topic, options))
    if not filters:
        raise Malformed("SUBSCRIBE without filters")
    return {"type": "subscribe", "packet_id": packet_id, "props": props, "filters": filters}


def _publish(body: bytes, flags: int) -> dict[str, Any]:
    topic, at = decode_string(body, 0)
    qos = flags >> 1 & 3
    packet_id = 0
    if qos:
        packet_id, at = _int(body, at, 2)
    props, at = decode_properties(body, at, "publish")
    return {"type": "publish", "topic": topic, "qos": qos, "packet_id": packet_id,
            "dup": bool(flags & 8), "retain": bool(flags & 1), "props": props,
            "payload": body[at:]}  # fmt: skip


def _puback(body: bytes, _flags: int) -> dict[str, Any]:
    packet_id, at = _int(body, 0, 2)
    reason, props = 0, dict[int, Any]()
    if at < len(body):
        reason, at = _int(body, at, 1)
    if at < len(body):
        props, at = decode_properties(body, at, "puback")
    if at != len(body):
        raise Malformed("PUBACK trailing bytes")
    return {"type": "puback", "packet_id": packet_id, "reason": reason, "props": props}


def _disconnect(body: bytes, _flags: int) -> dict[str, Any]:
    reason, props, at = 0, dict[int, Any](), 0
    if body:
        reason, at = _int(body, 0, 1)
    if at < len(body):
        props, at = decode_properties(body, at, "disconnect")
    if at != len(body):
        raise Malformed("DISCONNECT trailing bytes")
    return {"type": "disconnect", "reason": reason, "props": props}


def _pingreq(body: bytes, _flags: int) -> dict[str, Any]:
    if body:
        raise Malformed("PINGREQ with a body")
    return {"type": "pingreq"}


def _unknown(body: bytes, flags: int) -> dict[str, Any]:
    raise Malformed("not a packet a client sends")


_BODY = {"connect": _connect, "subscribe": _subscribe, "publish": _publish,
         "puback": _puback, "disconnect": _disconnect, "pingreq": _pingreq,
         "connack": _unknown, "suback": _unknown, "pingresp": _unknown, "?": _unknown}  # fmt: skip
