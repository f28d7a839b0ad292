"""Dead letters keep a bounded, pseudonym-free prefix of what was refused."""

from __future__ import annotations

import base64

import pytest

from stream_processor.dead_letter import RAW_PREFIX_BYTES, DeadLetter, decode_dead_letter

pytestmark = pytest.mark.unit


def test_dead_letter_round_trip_bounded_and_redacted() -> None:
    raw = b'{"subject":"ps1_' + b"ab" * 16 + b'","image":"' + b"A" * 5000 + b'"}'
    dl = DeadLetter.build(raw, "unknown_field", "Object contains unknown field `image`",
                          "facegate/v1/a/b/c/d/events", 1_800_000_000_000, "bridge")  # fmt: skip
    back = decode_dead_letter(dl.encode())
    assert back == dl
    kept = base64.b64decode(back.raw_prefix_b64)
    assert len(kept) <= RAW_PREFIX_BYTES
    assert back.raw_len == len(raw)
    assert b"ps1_<redacted>" in kept and b"ab" * 16 not in kept
