"""The anonymized gate event: the only thing a gate device ever sends about a passage.

It has no field for an image, an embedding, a name or an id number, and the
decoder rejects any field it does not define, so a would-be biometric field is
an error, not a silently carried extra.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

from edge_agent.wire.bounds import MAX_SAFE_INT
from edge_agent.wire.bounds import MAX_TIME_MS as MAX_TIME_MS  # re-exported: an older home
from edge_agent.wire.bounds import MIN_TIME_MS as MIN_TIME_MS
from edge_agent.wire.decoding import WireDecoder, published_schema
from edge_agent.wire.topics import ID_PATTERN

SCHEMA_VERSION = 1

UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
#: ``ps1_`` + 128 bits of HMAC-SHA256(site key, domain | tenant | site | resident id), hex.
PSEUDONYM_PATTERN = r"^ps1_[0-9a-f]{32}$"
#: ``cr1_`` + 128 bits of HMAC-SHA256(site key, domain | tenant | site | consent reference):
#: the form's number itself never leaves the site.
CONSENT_DIGEST_PATTERN = r"^cr1_[0-9a-f]{32}$"
PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{1,47}$"
TOKEN_PATTERN = r"^[A-Za-z0-9._:+-]{1,64}$"  # noqa: S105 - a regex, not a secret

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, description="lower-case id, 1-63 chars")]
Pseudonym = Annotated[
    str,
    msgspec.Meta(
        pattern=PSEUDONYM_PATTERN,
        description="per-site keyed hash of the resident id; unlinkable across sites",
    ),
]
Purpose = Annotated[
    str, msgspec.Meta(pattern=PURPOSE_PATTERN, description="a purpose named in the policy")
]
Token = Annotated[str, msgspec.Meta(pattern=TOKEN_PATTERN)]
ConsentDigest = Annotated[
    str,
    msgspec.Meta(
        pattern=CONSENT_DIGEST_PATTERN,
        description="site-keyed digest of the consent reference (never the form's number)",
    ),
]
EpochMs = Annotated[
    int, msgspec.Meta(ge=MIN_TIME_MS, le=MAX_TIME_MS, description="ms since the epoch, UTC")
]


class EventKind(enum.StrEnum):
    """How the person at the gate identified themselves (or did not)."""

    FACE_MATCH = "face_match"
    UNKNOWN_FACE = "unknown_face"
    KEY_CARD = "key_card"
    PIN = "pin"
    MANUAL_OPEN = "manual_open"


class Decision(enum.StrEnum):
    GRANTED = "granted"
    DENIED = "denied"


class ScoreBand(enum.StrEnum):
    """A coarse similarity band: enough to audit thresholds, useless as a biometric."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


#: Kinds that identify a resident and therefore carry a pseudonym.
SUBJECT_KINDS = frozenset({EventKind.FACE_MATCH, EventKind.KEY_CARD, EventKind.PIN})


class GateEvent(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True
):
    """One decision at one gate. Version 1 of the wire contract."""

    schema_version: Literal[1]
    event_id: Annotated[str, msgspec.Meta(pattern=UUID7_PATTERN, description="UUIDv7")]
    seq: Annotated[
        int, msgspec.Meta(ge=0, le=MAX_SAFE_INT, description="per-device sequence number")
    ]
    tenant: Id
    site: Id
    gate: Id
    device: Id
    kind: EventKind
    decision: Decision
    purpose: Purpose
    occurred_at_ms: EpochMs
    subject: Pseudonym | None = None
    score_band: ScoreBand | None = None
    model: Token | None = None
    consent_ref: ConsentDigest | None = None
    reason: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z_]{0,31}$")] | None = None

    def __hash__(self) -> int:
        # By value, so the decoder's subclass (wire/strict.py) hashes alike.
        return hash(msgspec.structs.astuple(self))

    def __post_init__(self) -> None:
        # Cross-field rules; msgspec turns ValueError into a ValidationError.
        # Runs for every decoded event: module constants, one branch per kind.
        kind = self.kind
        if kind is _FACE_MATCH:
            if self.subject is None:
                raise ValueError("a face_match event needs a subject pseudonym")
        elif kind is _UNKNOWN_FACE:
            if self.subject is not None:
                raise ValueError("an unknown_face event must not carry a subject")
            if self.decision is _GRANTED:
                raise ValueError("an unknown face is never granted by recognition")
        elif self.score_band is not None:
            raise ValueError("score_band only belongs to face events")


_FACE_MATCH = EventKind.FACE_MATCH
_UNKNOWN_FACE = EventKind.UNKNOWN_FACE
_GRANTED = Decision.GRANTED

_encoder = msgspec.json.Encoder()
#: Strict like ``msgspec.json.Decoder(GateEvent)``, checking repeating ids once (strict.py),
#: and refusing duplicate keys (decoding.py); event ids and pseudonyms are checked every
#: time (one regex: cheaper than a memo miss).
_decoder = WireDecoder(GateEvent, unique=("event_id", "subject"))


def encode_event(event: GateEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(payload: bytes | bytearray | memoryview) -> GateEvent:
    """Decode and validate strictly; raises WireError with a stable reason code
    (``wire.decoding.REASONS``: e.g. ``out_of_range``, ``duplicate_key``)."""
    return _decoder.decode(payload)


def event_json_schema() -> dict[str, object]:
    """The JSON Schema of the event, for implementers of other devices."""
    return published_schema(GateEvent, "facegate GateEvent v1", "gate-event-v1")
