"""A check applied to every payload a gate device publishes in the tests:
no image, no float array, no name or resident id, no field outside the contract."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from edge_agent.wire import GateEvent
from edge_agent.wire.commands import CommandAck

ALLOWED_KEYS = set(GateEvent.__struct_fields__)
#: A device's command acknowledgements (its acks topic) are checked the same way.
ACK_KEYS = set(CommandAck.__struct_fields__)
_BLOB = re.compile(r"[A-Za-z0-9+/=]{120,}")


def assert_anonymized(
    payload: bytes, forbidden: Iterable[str] = (), allowed: set[str] | None = None
) -> None:
    doc = json.loads(payload)
    assert isinstance(doc, dict), "payload must be one JSON object"
    extra = set(doc) - (ALLOWED_KEYS if allowed is None else allowed)
    assert not extra, f"fields outside the wire contract: {extra}"
    for key, value in doc.items():
        assert not isinstance(value, list | dict), f"{key}: nested data has no place in an event"
        assert not isinstance(value, float), f"{key}: a float is not allowed (embeddings, scores)"
        if isinstance(value, str):
            assert not _BLOB.search(value), f"{key}: looks like an encoded blob (image/embedding)"
    text = payload.decode()
    for word in forbidden:
        assert word not in text, f"payload contains a forbidden identifier {word!r}"
