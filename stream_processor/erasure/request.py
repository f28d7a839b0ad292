"""An erasure request: the value on the erasure topic, keyed by request id, and how
the worker reads it (as strictly as the wire reads a device's messages)."""

from __future__ import annotations

from typing import Literal

import msgspec

from edge_agent.errors import WireError
from edge_agent.wire.commands import Uuid7
from edge_agent.wire.decoding import WireDecoder
from edge_agent.wire.events import EpochMs, Id, Pseudonym, Purpose
from edge_agent.wire.whole import check_whole
from stream_processor.quarantine import Refusal

Channel = Literal["office", "web", "api", "cli", "court"]


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """An erasure request (the value on the erasure topic, keyed by request id)."""

    schema_version: Literal[1] = 1
    request_id: Uuid7
    tenant: Id
    site: Id
    subject: Pseudonym
    #: Purposes to erase; null: everything about the subject.
    purposes: list[Purpose] | None = None
    channel: Channel
    requested_at_ms: EpochMs

    def __post_init__(self) -> None:
        check_whole(self)  # msgspec's pattern check takes a trailing newline (wire/whole.py)

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


def decode_request(data: bytes) -> ErasureRequest:
    return msgspec.json.decode(data, type=ErasureRequest)


_strict = WireDecoder(ErasureRequest, unique=("request_id", "subject"))


def read_request(data: bytes | None) -> ErasureRequest | Refusal:
    """The request on the erasure topic as strictly as the wire reads a device's
    messages (duplicate keys, bounds, depth), or why it is refused (never quoting it:
    it names a subject)."""
    if data is None:
        return Refusal("missing_value", "erasure request without a value")
    try:
        return _strict.decode(data)
    except WireError as exc:
        return Refusal(exc.reason, exc.detail[:300])


__all__ = ["Channel", "ErasureRequest", "decode_request", "read_request"]
