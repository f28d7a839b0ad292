"""The memoised strict decoder refuses what msgspec's own decoder refuses, and also a
trailing newline that Python's ``$`` lets through."""

from __future__ import annotations

import itertools
import json

import msgspec
import pytest

from edge_agent.wire import Decision, EventKind, GateEvent, encode_event
from edge_agent.wire.strict import StrictDecoder
from tests.wire.samples import make

pytestmark = pytest.mark.unit

BAD_STRINGS = ["", "UPPER", "has space", "x" * 80, "ok\n", "ünï", "ps1_" + "g" * 32, "-lead"]
PATTERN_FIELDS = [
    "event_id", "tenant", "site", "gate", "device", "purpose", "subject", "model",
    "consent_ref",
]  # fmt: skip


def corpus() -> list[bytes]:
    """Valid events, then each pattern field set to each bad string, twice over
    (the second time after the valid tuple around it has been remembered)."""
    base = json.loads(encode_event(make()))
    out = [encode_event(make()) for _ in range(3)]
    for field, bad in itertools.product(PATTERN_FIELDS, BAD_STRINGS):
        doc = dict(base, **{field: bad})
        out += [encode_event(make()), json.dumps(doc).encode()]
    unknown = make(
        kind=EventKind.UNKNOWN_FACE, subject=None, decision=Decision.DENIED, reason="no_match"
    )
    out.append(encode_event(unknown))
    out.append(json.dumps(dict(base, reason="Bad Reason")).encode())
    return out * 2


def outcome(decode: object, payload: bytes) -> tuple[object, ...]:
    try:
        return tuple(msgspec.structs.astuple(decode(payload)))  # type: ignore[operator]
    except msgspec.ValidationError as exc:
        return ("refused", str(exc))


def test_same_verdicts_as_msgspec_side_by_side() -> None:
    reference = msgspec.json.Decoder(GateEvent)
    strict = StrictDecoder(GateEvent, unique=("event_id",))
    payloads = corpus()
    differ = []
    for payload in payloads:
        ours, theirs = outcome(strict.decode, payload), outcome(reference.decode, payload)
        if ours != theirs:
            differ.append((payload, ours, theirs))
    # The only difference: msgspec's re.search lets "ok\n" through `^...$`; we refuse it.
    assert differ
    for payload, ours, theirs in differ:
        assert b"ok\\n" in payload, (payload, ours, theirs)
        assert ours[0] == "refused" and theirs[0] != "refused"
    refused = [p for p in payloads if outcome(strict.decode, p)[0] == "refused"]
    # Accepted bad-looking values: the model token allows "UPPER", "-lead" and "ps1_g…",
    # and a purpose may be "ps1_g…" (consent_ref is a cr1_ digest: none passes). Everything
    # else is refused.
    assert len(refused) == 2 * (len(PATTERN_FIELDS) * len(BAD_STRINGS) - 4 + 1)


def test_a_memoised_value_does_not_let_a_bad_neighbour_through() -> None:
    strict = StrictDecoder(GateEvent, unique=("event_id",))
    good = make()
    strict.decode(encode_event(good))
    doc = json.loads(encode_event(good))
    doc["site"] = "Bad Site"
    with pytest.raises(msgspec.ValidationError, match=r"\$\.site"):
        strict.decode(json.dumps(doc).encode())


def test_decoded_event_is_a_gate_event_equal_and_hashing_alike() -> None:
    event = make()
    decoded = StrictDecoder(GateEvent).decode(encode_event(event))
    assert isinstance(decoded, GateEvent)
    assert decoded == event and event == decoded
    assert hash(decoded) == hash(event)
    assert decoded != make()
    assert encode_event(decoded) == encode_event(event)
