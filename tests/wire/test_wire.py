"""The wire contract: round trip, strictness, cross-field rules, published schema."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge_agent.errors import WireError
from edge_agent.wire import (
    DeviceIdentity,
    EventKind,
    decode_event,
    encode_event,
    new_event_id,
    parse_event_topic,
)
from edge_agent.wire.events import event_json_schema
from edge_agent.wire.ids import event_id_ms
from tests.support.privacy import assert_anonymized
from tests.wire.samples import make

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_round_trip_keeps_every_field() -> None:
    event = make()
    payload = encode_event(event)
    assert decode_event(payload) == event
    assert_anonymized(payload)


def test_optional_fields_are_omitted_not_null() -> None:
    event = make(kind=EventKind.KEY_CARD, score_band=None, model=None, consent_ref=None)
    doc = json.loads(encode_event(event))
    assert "score_band" not in doc and "model" not in doc
    assert doc["schema_version"] == 1


@pytest.mark.parametrize("extra", ["image", "embedding", "name", "id_number", "x"])
def test_unknown_fields_are_rejected(extra: str) -> None:
    doc = json.loads(encode_event(make()))
    doc[extra] = [0.1, 0.2] if extra == "embedding" else "data"
    with pytest.raises(WireError) as err:
        decode_event(json.dumps(doc).encode())
    assert err.value.reason == "unknown_field"


@pytest.mark.parametrize(
    "missing", ["event_id", "seq", "site", "kind", "schema_version", "purpose"]
)
def test_missing_fields_are_rejected(missing: str) -> None:
    doc = json.loads(encode_event(make()))
    del doc[missing]
    with pytest.raises(WireError) as err:
        decode_event(json.dumps(doc).encode())
    assert err.value.reason == "missing_field"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("schema_version", 2, "invalid_field"),
        ("seq", -1, "out_of_range"),
        ("seq", "7", "invalid_field"),
        ("site", "Site One", "invalid_field"),
        ("subject", "Zhang San", "invalid_field"),
        ("subject", "ps1_123", "invalid_field"),
        ("kind", "iris", "invalid_field"),
        ("occurred_at_ms", 5, "out_of_range"),
        ("event_id", "not-a-uuid", "invalid_field"),
        ("purpose", "public security", "invalid_field"),
    ],
)
def test_wrong_values_are_rejected(key: str, value: object, reason: str) -> None:
    doc = json.loads(encode_event(make()))
    doc[key] = value
    with pytest.raises(WireError) as err:
        decode_event(json.dumps(doc).encode())
    assert err.value.reason == reason


def test_bad_json_is_its_own_reason() -> None:
    with pytest.raises(WireError) as err:
        decode_event(b"PNG\r\n")
    assert err.value.reason == "bad_json"
    with pytest.raises(WireError) as err:
        decode_event(b"\x89PNG\r\n")  # an image is not even UTF-8
    assert err.value.reason == "invalid_utf8"


def test_cross_field_rules() -> None:
    with pytest.raises(WireError):
        decode_event(encode_event(make()).replace(b'"face_match"', b'"unknown_face"'))
    payload = json.loads(encode_event(make()))
    del payload["subject"]
    with pytest.raises(WireError):
        decode_event(json.dumps(payload).encode())


def test_event_ids_are_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert abs(event_id_ms(ids[0]) - time.time() * 1000) < 5_000


def test_one_far_future_time_does_not_pin_later_ids() -> None:
    future_ms = 4_102_444_800_000
    assert event_id_ms(new_event_id(future_ms)) == future_ms
    later = new_event_id()
    assert abs(event_id_ms(later) - time.time() * 1000) < 5_000
    # a small step back (an NTP slew) keeps the order
    first = new_event_id(int(time.time() * 1000) + 2_000)
    assert new_event_id() > first


def test_topic_identity_round_trip() -> None:
    ident = DeviceIdentity("acme", "s1", "g1", "d1")
    assert parse_event_topic(f"{ident.prefix}/events") == ident
    assert parse_event_topic("facegate/v1/acme/s1/g1/events") is None
    assert parse_event_topic("facegate/v1/ACME/s1/g1/d1/events") is None
    with pytest.raises(ValueError):
        DeviceIdentity("acme", "s/1", "g", "d")


def test_published_json_schema_is_current() -> None:
    published = json.loads((REPO / "docs" / "schema" / "gate-event-v1.json").read_text())
    assert published == json.loads(json.dumps(event_json_schema())), (
        "run: facegate edge export-schema"
    )
    props = published["$defs"]["GateEvent"]["properties"]
    assert published["$defs"]["GateEvent"]["additionalProperties"] is False
    for forbidden in ("image", "embedding", "name", "id_number", "face"):
        assert forbidden not in props
