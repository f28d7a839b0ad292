"""The dead-letter record: why an input was refused, where it came from, and a
bounded prefix of its bytes (never the whole of a possibly biometric payload)."""

from __future__ import annotations

import base64
import re

import msgspec

#: How much of a refused payload is kept, base64-encoded, for diagnosis.
RAW_PREFIX_BYTES = 256

#: A refused payload may still carry a pseudonym; it never reaches the DLQ.
_PSEUDONYM = re.compile(rb"ps1_[0-9a-fA-F]{4,32}")


def redact(raw: bytes) -> bytes:
    """The prefix kept for diagnosis, with anything pseudonym-like blanked."""
    return _PSEUDONYM.sub(b"ps1_<redacted>", raw[: RAW_PREFIX_BYTES + 64])[:RAW_PREFIX_BYTES]


class DeadLetter(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    reason: str
    detail: str
    source_topic: str
    received_at_ms: int
    stage: str
    raw_len: int
    raw_prefix_b64: str
    #: Where the refused record sits in ``source_topic`` when it came from Kafka (an
    #: operator re-reads it there while the topic keeps it); null for MQTT input.
    source_partition: int | None = None
    source_offset: int | None = None

    @classmethod
    def build(
        cls,
        raw: bytes,
        reason: str,
        detail: str,
        source: str,
        now_ms: int,
        stage: str,
        *,
        partition: int | None = None,
        offset: int | None = None,
    ) -> DeadLetter:
        return cls(
            reason=reason,
            detail=detail[:500],
            source_topic=source,
            received_at_ms=now_ms,
            stage=stage,
            raw_len=len(raw),
            raw_prefix_b64=base64.b64encode(redact(raw)).decode(),
            source_partition=partition,
            source_offset=offset,
        )

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


def decode_dead_letter(data: bytes) -> DeadLetter:
    return msgspec.json.decode(data, type=DeadLetter)
