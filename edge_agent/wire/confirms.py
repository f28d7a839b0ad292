"""The cloud's delivery confirmation: a range of a device's events, or one of its
command acknowledgements, is durable in Kafka.

    facegate/v1/{tenant}/{site}/{gate}/{device}/confirms     cloud (bridge) → one device

A gate deletes an event from its outbox only when a confirmation covers its
sequence number; the broker's PUBACK only marks it sent (a broker crash can
lose what it acknowledged but had not saved). A confirmation names a range,
not a bare "through N": sequence numbers have gaps the cloud never sees (rows
purged on the device), and a broker crash can lose a stretch in the middle,
so "everything up to N" would delete events that never arrived. A command
acknowledgement (a withdrawal's, an erasure's) is confirmed by its command id:
the cloud does not send every command again, so the gate keeps its ack until then.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from edge_agent.errors import WireError
from edge_agent.wire.bounds import MAX_SAFE_INT
from edge_agent.wire.decoding import WireDecoder, published_schema
from edge_agent.wire.events import UUID7_PATTERN, EpochMs, Id
from edge_agent.wire.topics import DeviceIdentity
from edge_agent.wire.whole import check_whole

Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT, description="per-device sequence number")]
Uuid7 = Annotated[str, msgspec.Meta(pattern=UUID7_PATTERN, description="UUIDv7")]


class DeliveryConfirmation(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True
):
    """Either every event of this device with ``from_seq <= seq <= through_seq`` that
    the cloud received is durable (in the raw topic, or dead-lettered with its
    reason), or (``command_id`` instead of the range) the device's acknowledgement
    of that command is. Version 1."""

    schema_version: Literal[1]
    tenant: Id
    site: Id
    gate: Id
    device: Id
    confirmed_at_ms: EpochMs
    from_seq: Seq | None = None
    through_seq: Seq | None = None
    command_id: Uuid7 | None = None

    def __post_init__(self) -> None:
        check_whole(self)  # msgspec's pattern check takes a trailing newline (wire/whole.py)
        if self.command_id is not None:
            if self.from_seq is not None or self.through_seq is not None:
                raise ValueError("an ack's confirmation names no seq range")
        elif self.from_seq is None or self.through_seq is None:
            raise ValueError("a confirmation names a seq range or a command_id")
        elif self.from_seq > self.through_seq:
            raise ValueError("from_seq must not exceed through_seq")


_encoder = msgspec.json.Encoder()
_decoder = WireDecoder(DeliveryConfirmation, unique=("command_id",))


def encode_confirmation(message: DeliveryConfirmation) -> bytes:
    return _encoder.encode(message)


def decode_confirmation(payload: bytes) -> DeliveryConfirmation:
    """Strict; raises WireError with a reason of ``wire.decoding.REASONS``."""
    return _decoder.decode(payload)


def confirmation_for(
    payload: bytes, identity: DeviceIdentity
) -> DeliveryConfirmation:
    """Decode a confirmation and check it names this device; ``WireError`` otherwise
    (reason ``invalid_field`` for another device's)."""
    message = decode_confirmation(payload)
    named = (message.tenant, message.site, message.gate, message.device)
    if named != (identity.tenant, identity.site, identity.gate, identity.device):
        raise WireError("invalid_field", "confirmation names another device")
    return message


def confirm_topic(identity: DeviceIdentity) -> str:
    return f"{identity.prefix}/confirms"


def confirmation_json_schema() -> dict[str, object]:
    return published_schema(
        DeliveryConfirmation, "facegate DeliveryConfirmation v1", "delivery-confirmation-v1"
    )
