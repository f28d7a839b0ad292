"""Commands from the cloud to the gate devices of a site, and the devices' acknowledgements.

    facegate/v1/{tenant}/{site}/commands                 cloud → every device of the site
    facegate/v1/{tenant}/{site}/{gate}/{device}/acks     device → cloud

A command names a subject only by its per-site pseudonym; the device finds
the template by hashing its enrolled resident ids with the site secret. The
acknowledgement states what was removed, with counts.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

from edge_agent.errors import WireError
from edge_agent.wire.bounds import MAX_EVENTS_PURGED, MAX_TEMPLATES_REMOVED
from edge_agent.wire.decoding import WireDecoder, published_schema
from edge_agent.wire.events import UUID7_PATTERN, EpochMs, Id, Pseudonym, Purpose
from edge_agent.wire.whole import check_whole

Uuid7 = Annotated[str, msgspec.Meta(pattern=UUID7_PATTERN, description="UUIDv7")]
#: A key card as a gate stores it: HMAC under the site secret (``CredentialHasher.card``).
CARD_DIGEST_PATTERN = r"^c1_[0-9a-f]{40}$"
CardDigest = Annotated[
    str,
    msgspec.Meta(
        pattern=CARD_DIGEST_PATTERN,
        description="keyed hash of a key-card number; the number itself never travels",
    ),
]


class CommandType(enum.StrEnum):
    #: Consent withdrawn (for ``purpose``, or for all purposes when it is null):
    #: remove the template, purge the subject's queued events.
    WITHDRAW_CONSENT = "withdraw_consent"
    #: Erasure: the same on the device, for every purpose, as part of an erasure request.
    ERASE_SUBJECT = "erase_subject"
    #: A key card was handed over on request: remove the subject's face templates (the
    #: face consent is withdrawn with it) and open for ``card`` from now on.
    REGISTER_CARD = "register_card"


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
    #: The card to register (``register_card`` only).
    card: CardDigest | None = None

    def __post_init__(self) -> None:
        check_whole(self)  # msgspec's pattern check takes a trailing newline (wire/whole.py)


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
    templates_removed: Annotated[int, msgspec.Meta(ge=0, le=MAX_TEMPLATES_REMOVED)]
    outbox_events_purged: Annotated[int, msgspec.Meta(ge=0, le=MAX_EVENTS_PURGED)]
    acked_at_ms: EpochMs
    request_id: Uuid7 | None = None
    detail: Annotated[str, msgspec.Meta(max_length=200)] | None = None

    def __post_init__(self) -> None:
        check_whole(self)  # msgspec's pattern check takes a trailing newline (wire/whole.py)


_encoder = msgspec.json.Encoder()
_command_decoder = WireDecoder(EdgeCommand, unique=("command_id", "subject", "request_id", "card"))
_ack_decoder = WireDecoder(CommandAck, unique=("command_id", "subject", "request_id"))


def encode(message: EdgeCommand | CommandAck) -> bytes:
    return _encoder.encode(message)


def decode_command(payload: bytes) -> EdgeCommand:
    """Strict; raises WireError with a reason of ``wire.decoding.REASONS``."""
    command = _command_decoder.decode(payload)
    if (command.type is CommandType.REGISTER_CARD) != (command.card is not None):
        raise WireError("invalid_field", "card is required by register_card, and only there")
    return command


def decode_ack(payload: bytes) -> CommandAck:
    """Strict; raises WireError with a reason of ``wire.decoding.REASONS``."""
    return _ack_decoder.decode(payload)


def command_json_schema() -> dict[str, object]:
    return published_schema(EdgeCommand, "facegate EdgeCommand v1")


def ack_json_schema() -> dict[str, object]:
    return published_schema(CommandAck, "facegate CommandAck v1")
