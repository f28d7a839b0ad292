"""Retention and camera purposes resolved from a policy document, fast enough per event.

A ``PolicyVersion`` is what ``facegate policy apply`` writes to the compacted
policies topic; ``CompiledPolicy`` answers "how long may (site, kind, purpose)
be kept" and "is this purpose allowed at this camera" with dict lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec

from edge_agent.wire.bounds import MAX_SAFE_INT
from edge_agent.wire.events import EpochMs, EventKind, Id
from edge_agent.wire.whole import check_whole
from stream_processor.errors import InvalidInput
from stream_processor.policy.document import PolicyDocument
from stream_processor.policy.durations import parse_duration_ms

#: Longest ``applied_by`` (a login, or ``web:`` and a token label of at most 80).
MAX_APPLIED_BY = 200
#: Longest change comment (the web API's own limit).
MAX_COMMENT = 500


class PolicyVersion(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One applied version of a tenant's policy (the value on the policies topic).

    Every number is bounded so that any reader (JSON in any language, SQLite, the
    audit log) holds it exactly; the document itself is checked by ``PolicyDocument``.
    """

    schema_version: Literal[1] = 1
    tenant: Id
    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT)]
    applied_at_ms: EpochMs
    applied_by: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_APPLIED_BY)]
    comment: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT)] = ""
    document: dict[str, Any]

    def __post_init__(self) -> None:
        # msgspec searches patterns with ``re.search``, whose ``$`` also matches before
        # a trailing newline: "acme\n" would pass as a tenant.
        check_whole(self)

    def encode(self) -> bytes:
        """The record's bytes, refused (``InvalidInput``) if a reader would refuse them:
        msgspec checks bounds when decoding only, and a version written out of bounds
        would be dead-lettered by every worker."""
        data = _encoder.encode(self)
        try:
            _decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"policy version out of bounds: {exc}") from None
        return data


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PolicyVersion)


def decode_version(data: bytes) -> PolicyVersion:
    """Raises ``msgspec.ValidationError``/``DecodeError`` for a record out of bounds."""
    return _decoder.decode(data)


@dataclass
class CompiledPolicy:
    document: PolicyDocument
    version: int = 0
    _retention: dict[tuple[str, str, str], int | None] = field(default_factory=dict, repr=False)
    _allowed: dict[tuple[str, str, str], frozenset[str]] = field(default_factory=dict, repr=False)
    #: The tenant's legal ceiling: no stored event is kept longer after it was received.
    ceiling_ms: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.ceiling_ms = parse_duration_ms(self.document.legal_ceiling)

    @property
    def tenant(self) -> str:
        return self.document.tenant

    def retention_ms(self, site: str, kind: str, purpose: str) -> int | None:
        """The rule in force; ``None`` when the policy has no rule (never stored)."""
        key = (site, kind, purpose)
        try:
            return self._retention[key]
        except KeyError:
            pass
        value: Duration | None = None
        k = EventKind(kind)
        sp = self.document.sites.get(site)
        if sp is not None and purpose in sp.retention.get(k, {}):
            value = sp.retention[k][purpose]
        elif purpose in self.document.retention.get(k, {}):
            value = self.document.retention[k][purpose]
        result = None if value is None else parse_duration_ms(value)
        self._retention[key] = result
        return result

    def allowed_purposes(self, site: str, gate: str, device: str) -> frozenset[str]:
        key = (site, gate, device)
        try:
            return self._allowed[key]
        except KeyError:
            pass
        names = self.document.camera_purposes
        sp = self.document.sites.get(site)
        if sp is not None:
            if sp.camera_purposes is not None:
                names = sp.camera_purposes
            if f"{gate}/{device}" in sp.cameras:
                names = sp.cameras[f"{gate}/{device}"]
            elif gate in sp.cameras:
                names = sp.cameras[gate]
        result = frozenset(names)
        self._allowed[key] = result
        return result

    def cutoffs(
        self, groups: list[tuple[str, str, str]], now_ms: int
    ) -> list[tuple[str, str, str, int]]:
        """For stored (site, kind, purpose) groups: rows that occurred before the
        returned cutoff are past their rule now. No rule means keep nothing."""
        out = []
        for site, kind, purpose in groups:
            rule = self.retention_ms(site, kind, purpose) if kind in _KINDS else None
            out.append((site, kind, purpose, now_ms - (rule or 0)))
        return out

    @property
    def raw_retention_ms(self) -> int:
        return parse_duration_ms(self.document.transport.raw_retention)

    @property
    def dlq_retention_ms(self) -> int:
        return parse_duration_ms(self.document.transport.dlq_retention)


Duration = str | int
_KINDS = frozenset(k.value for k in EventKind)


@lru_cache(maxsize=256)
def compile_version(data: bytes) -> CompiledPolicy:
    """Decode, validate and compile a policies-topic value (cached by its bytes)."""
    v = decode_version(data)
    return CompiledPolicy(PolicyDocument.model_validate(v.document), version=v.version)
