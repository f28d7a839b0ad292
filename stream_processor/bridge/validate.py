"""Pure validation of one MQTT message: accept it with its Kafka key, or refuse it with a reason."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from edge_agent.errors import WireError
from edge_agent.wire import decode_event
from edge_agent.wire.commands import decode_ack
from edge_agent.wire.topics import DeviceIdentity, parse_device_topic


# NamedTuples, not frozen dataclasses: one is built per message (~0.3 µs, not ~1.5 µs).
class Accepted(NamedTuple):
    key: bytes
    value: bytes


class Rejected(NamedTuple):
    reason: str
    detail: str


REASONS = (
    "oversized",
    "bad_topic",
    "bad_json",
    "unknown_field",
    "missing_field",
    "invalid_field",
    "identity_mismatch",
    "mqtt_refused",
)

#: What an accepted message is: a gate event or a device's command acknowledgement.
EVENT, ACK = "event", "ack"


@lru_cache(maxsize=65_536)
def _proven(topic: str, leaf: str) -> tuple[str, str, str, str] | None:
    # One parse per device topic, not per message: topics repeat, ids are regex-checked.
    identity: DeviceIdentity | None = parse_device_topic(topic, leaf)
    if identity is None:
        return None
    return (identity.tenant, identity.site, identity.gate, identity.device)


def check_message(topic: str, payload: bytes, max_bytes: int) -> Accepted | Rejected:
    """Accept a gate event published on its own device's topic.

    The topic is the identity the broker proved (its ACL pins each account to
    its prefix); a payload naming another tenant, site, gate or device is a
    spoofing attempt.
    """
    if len(payload) > max_bytes:
        return Rejected("oversized", f"{len(payload)} bytes > {max_bytes}")
    proven = _proven(topic, "events")
    if proven is None:
        return Rejected("bad_topic", f"not a device events topic: {topic[:200]!r}")
    try:
        event = decode_event(payload)
    except WireError as exc:
        return Rejected(exc.reason, exc.detail)
    claimed = (event.tenant, event.site, event.gate, event.device)
    if claimed != proven:
        return Rejected(
            "identity_mismatch",
            f"payload names {'/'.join(claimed)}, topic proves {'/'.join(proven)}",
        )
    # Keyed by site: one site's events stay ordered in one partition.
    return Accepted(key=f"{event.tenant}/{event.site}".encode(), value=payload)


def check_ack(topic: str, payload: bytes, max_bytes: int) -> Accepted | Rejected:
    """Accept a command acknowledgement published on its own device's ``acks`` topic."""
    if len(payload) > max_bytes:
        return Rejected("oversized", f"{len(payload)} bytes > {max_bytes}")
    proven = _proven(topic, "acks")
    if proven is None:
        return Rejected("bad_topic", f"not a device acks topic: {topic[:200]!r}")
    try:
        ack = decode_ack(payload)
    except WireError as exc:
        return Rejected(exc.reason, exc.detail)
    claimed = (ack.tenant, ack.site, ack.gate, ack.device)
    if claimed != proven:
        return Rejected(
            "identity_mismatch",
            f"ack names {'/'.join(claimed)}, topic proves {'/'.join(proven)}",
        )
    return Accepted(key=f"{ack.tenant}/{ack.site}".encode(), value=payload)


def check_any(topic: str, payload: bytes, max_bytes: int) -> tuple[str, Accepted | Rejected]:
    """Route by the topic's last level: ``.../acks`` are acknowledgements, all else events."""
    if topic.endswith("/acks"):
        return ACK, check_ack(topic, payload, max_bytes)
    return EVENT, check_message(topic, payload, max_bytes)
