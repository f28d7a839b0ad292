"""The wire contract between gate devices and the cloud, owned by the device side.

Imports nothing heavier than msgspec, so the cloud side can import it freely.
"""

from edge_agent.wire.events import (
    SCHEMA_VERSION,
    Decision,
    EventKind,
    GateEvent,
    ScoreBand,
    decode_event,
    encode_event,
)
from edge_agent.wire.ids import new_event_id
from edge_agent.wire.topics import (
    DeviceIdentity,
    ack_topic,
    command_topic,
    event_topic,
    parse_event_topic,
    site_command_topic,
)

__all__ = [
    "SCHEMA_VERSION",
    "Decision",
    "DeviceIdentity",
    "EventKind",
    "GateEvent",
    "ScoreBand",
    "ack_topic",
    "command_topic",
    "decode_event",
    "encode_event",
    "event_topic",
    "new_event_id",
    "parse_event_topic",
    "site_command_topic",
]
