"""Commands from the cloud to the gate devices of a site, and the devices' acknowledgements.

    facegate/v1/{tenant}/{site}/commands                 cloud → every device of the site
    facegate/v1/{tenant}/{site}/{gate}/{device}/acks     device → cloud

A command names a subject only by its per-site pseudonym; the device finds
the template by hashing its enrolled resident ids with the site secret. The
acknowledgement states what was removed, with counts.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal, TypeVar

import msgspec

from edge_agent.errors import WireError
from edge_agent.wire.events import UUID7_PATTERN, EpochMs, Id, Pseudonym, Purpose

Uuid7 = Annotated[str, msgspec.Meta(pattern=UUID7_PATTERN, description="UUIDv7")]


class CommandType(enum.StrEnum):
    #: Consent withdrawn (for ``purpose``, or for all purposes when it is null):
    #: remove the template, purge the subject's queued events.
    WITHDRAW_CONSENT = "withdraw_consent"
    #: Erasure: the same on the device, for every purpose, as part of an erasure request.
    ERASE_SUBJECT = "erase_subject"


class AckStatus(enum.StrEnum):
    DONE = "done"
    FAILED = "failed"


class EdgeCommand(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True
):
    schema_version: Literal[1]
    command_id: Uuid7
    type: CommandType
    tenant: Id
    site: Id
    subject: Pseudonym
    issued_at_ms: EpochMs
    purpose: Purpose | None = None
    #: The erasure request this command belongs to, if any.
    request_id: Uuid7 | None = None


class CommandAck(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True
):
    schema_version: Literal[1]
    command_id: Uuid7
    type: CommandType
    tenant: Id
    site: Id
    gate: Id
    device: Id
    subject: Pseudonym
    status: AckStatus
    templates_removed: Annotated[int, msgspec.Meta(ge=0)]
    outbox_events_purged: Annotated[int, msgspec.Meta(ge=0)]
    acked_at_ms: EpochMs
    request_id: Uuid7 | None = None
    detail: Annotated[str, msgspec.Meta(max_length=200)] | None = None


_encoder = msgspec.json.Encoder()
_command_decoder = msgspec.json.Decoder(EdgeCommand)
_ack_decoder = msgspec.json.Decoder(CommandAck)


def encode(message: EdgeCommand | CommandAck) -> bytes:
    return _encoder.encode(message)


T = TypeVar("T")


def _decode(decoder: msgspec.json.Decoder[T], payload: bytes) -> T:
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if "unknown field" in text:
            raise WireError("unknown_field", text) from None
        if "missing required field" in text:
            raise WireError("missing_field", text) from None
        raise WireError("invalid_field", text) from None
    except msgspec.DecodeError as exc:
        raise WireError("bad_json", str(exc)) from None


def decode_command(payload: bytes) -> EdgeCommand:
    return _decode(_command_decoder, payload)


def decode_ack(payload: bytes) -> CommandAck:
    return _decode(_ack_decoder, payload)


def command_json_schema() -> dict[str, object]:
    schema: dict[str, object] = msgspec.json.schema(EdgeCommand)
    schema["title"] = "facegate EdgeCommand v1"
    return schema


def ack_json_schema() -> dict[str, object]:
    schema: dict[str, object] = msgspec.json.schema(CommandAck)
    schema["title"] = "facegate CommandAck v1"
    return schema
