"""MQTT topic layout. A device's topics carry its full identity; the broker's ACL
pins each device account to its own prefix, so the topic is the proven identity.

    facegate/v1/{tenant}/{site}/{gate}/{device}/events     device → cloud: gate events
    facegate/v1/{tenant}/{site}/{gate}/{device}/acks       device → cloud: command acks
    facegate/v1/{tenant}/{site}/{gate}/{device}/commands   cloud → one device
    facegate/v1/{tenant}/{site}/commands                   cloud → every device of a site
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_agent.errors import InvalidInput

ROOT = "facegate/v1"
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_ID = re.compile(ID_PATTERN)

EVENTS_FILTER = f"{ROOT}/+/+/+/+/events"
ACKS_FILTER = f"{ROOT}/+/+/+/+/acks"


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Where a device sits: tenant (property firm), site, gate and device ids."""

    tenant: str
    site: str
    gate: str
    device: str

    def __post_init__(self) -> None:
        for name in ("tenant", "site", "gate", "device"):
            value = getattr(self, name)
            if not _ID.fullmatch(value):
                raise InvalidInput(f"{name} id {value!r} must match {ID_PATTERN}")

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.tenant}/{self.site}/{self.gate}/{self.device}"

    @property
    def username(self) -> str:
        """The MQTT account name of this device (unique across the broker)."""
        return f"{self.tenant}.{self.site}.{self.gate}.{self.device}"


def event_topic(identity: DeviceIdentity) -> str:
    return f"{identity.prefix}/events"


def command_topic(identity: DeviceIdentity) -> str:
    return f"{identity.prefix}/commands"


def ack_topic(identity: DeviceIdentity) -> str:
    return f"{identity.prefix}/acks"


def site_command_topic(tenant: str, site: str) -> str:
    return f"{ROOT}/{tenant}/{site}/commands"


def parse_event_topic(topic: str) -> DeviceIdentity | None:
    """The identity encoded in an events topic, or None if it is not one."""
    return parse_device_topic(topic, "events")


def parse_device_topic(topic: str, leaf: str) -> DeviceIdentity | None:
    """The identity in ``facegate/v1/{tenant}/{site}/{gate}/{device}/{leaf}``, else None."""
    parts = topic.split("/")
    if len(parts) != 7 or f"{parts[0]}/{parts[1]}" != ROOT or parts[6] != leaf:
        return None
    try:
        return DeviceIdentity(parts[2], parts[3], parts[4], parts[5])
    except ValueError:
        return None
