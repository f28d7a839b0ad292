"""The consent ledger's record and what it means for an event.

Consent is per (tenant, site, subject pseudonym, purpose). A minor's consent
must be given by a guardian. A withdrawal may name a purpose or ``*`` (every
purpose); the latest record in time wins.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

from edge_agent.errors import WireError
from edge_agent.wire.events import EpochMs, Id, Pseudonym, Token
from edge_agent.wire.whole import check_whole

ALL_PURPOSES = "*"
PurposeOrAll = Annotated[str, msgspec.Meta(pattern=r"^(\*|[a-z][a-z0-9_]{1,47})$")]


class ConsentStatus(enum.StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class GivenBy(enum.StrEnum):
    SELF = "self"
    GUARDIAN = "guardian"


class ConsentRecord(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True
):
    """One entry of the ledger (the value on the compacted consent topic)."""

    schema_version: Literal[1] = 1
    tenant: Id
    site: Id
    subject: Pseudonym
    purpose: PurposeOrAll
    status: ConsentStatus
    given_by: GivenBy
    minor: bool = False
    evidence_ref: Token | None = None
    at_ms: EpochMs

    def __post_init__(self) -> None:
        # msgspec's pattern check takes "site\n" for an id (wire/whole.py); the ledger
        # is read by decode and written through convert, so the record itself refuses it.
        check_whole(self)
        if self.status is ConsentStatus.GRANTED:
            if self.purpose == ALL_PURPOSES:
                raise ValueError("consent is granted for one named purpose, never for all")
            if self.minor and self.given_by is not GivenBy.GUARDIAN:
                raise ValueError("a minor's consent must be given by a guardian")
            if self.evidence_ref is None:
                raise ValueError("a grant needs an evidence reference (the signed form's id)")

    @property
    def key(self) -> bytes:
        return consent_key(self.tenant, self.site, self.subject, self.purpose)

    def encode(self) -> bytes:
        return _encoder.encode(self)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ConsentRecord)


def consent_key(tenant: str, site: str, subject: str, purpose: str) -> bytes:
    return f"{tenant}/{site}/{subject}/{purpose}".encode()


def decode_consent(data: bytes) -> ConsentRecord:
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise WireError("invalid_field", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise WireError("bad_json", str(exc)) from None


class ConsentState(enum.StrEnum):
    GRANTED = "granted"
    NONE = "none"
    WITHDRAWN = "withdrawn"


def effective_consent(
    specific: ConsentRecord | None, all_purposes: ConsentRecord | None
) -> ConsentState:
    """The state for one purpose given its own record and the ``*`` record."""
    latest = specific
    if all_purposes is not None and (latest is None or all_purposes.at_ms >= latest.at_ms):
        latest = all_purposes
    if latest is None:
        return ConsentState.NONE
    if latest.status is ConsentStatus.GRANTED:
        # Defence in depth: the record validates this too.
        if latest.minor and latest.given_by is not GivenBy.GUARDIAN:
            return ConsentState.NONE
        return ConsentState.GRANTED
    return ConsentState.WITHDRAWN
