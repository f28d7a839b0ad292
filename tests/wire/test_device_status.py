"""The device status message: strict, bounded, nothing biometric, schema published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.errors import WireError
from edge_agent.wire.status import (
    DeviceStatus,
    decode_status,
    encode_status,
    status_json_schema,
)

REPO = Path(__file__).resolve().parents[2]


def doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        schema_version=1, tenant="acme", site="north-garden", gate="main", device="cam-1",
        sent_at_ms=1_790_000_000_000, uptime_s=3600, outbox_depth=12, oldest_queued_age_s=4.5,
        gallery_templates=812, models=["blazeface-back256", "mobilefacenet-192"],
        frames_per_s=14.8, decision_latency_ms=21.3, software_version="0.1.0",
    )  # fmt: skip
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def test_round_trip() -> None:
    status = decode_status(json.dumps(doc()).encode())
    assert isinstance(status, DeviceStatus) and status.gallery_templates == 812
    assert decode_status(encode_status(status)) == status


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"embedding": [0.1] * 128}, "unknown_field"),
        ({"subject": "ps1_" + "ab" * 16}, "unknown_field"),  # no pseudonym on this message
        ({"name": "Zhang San"}, "unknown_field"),
        ({"image": "/9j/AAAA"}, "unknown_field"),
        ({"outbox_depth": -1}, "out_of_range"),
        ({"outbox_depth": 10**300}, "out_of_range"),
        ({"gallery_templates": 10**9}, "out_of_range"),
        ({"frames_per_s": 1e9}, "invalid_field"),
        ({"sent_at_ms": 0}, "out_of_range"),
        ({"models": ["x"] * 9}, "invalid_field"),
        ({"models": [["nested"]]}, "too_deep"),
        ({"software_version": "1.0; rm -rf /"}, "invalid_field"),
        ({"tenant": "ACME"}, "invalid_field"),
        ({"schema_version": 2}, "invalid_field"),
        ({"uptime_s": ...}, "missing_field"),
    ],
)
def test_hostile_status_refused_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(WireError) as err:
        decode_status(json.dumps(doc(**changes)).encode())
    assert err.value.reason == reason, err.value


def test_no_field_could_carry_an_identifier_or_a_biometric() -> None:
    fields = {f.name for f in msgspec.structs.fields(DeviceStatus)}
    assert fields == {
        "schema_version", "tenant", "site", "gate", "device", "sent_at_ms", "uptime_s",
        "outbox_depth", "oldest_queued_age_s", "gallery_templates", "models", "frames_per_s",
        "decision_latency_ms", "software_version", "gallery_residents",
    }  # fmt: skip
    schema = json.dumps(status_json_schema())
    assert '"additionalProperties": false' in schema


def test_published_schema_is_current() -> None:
    published = json.loads((REPO / "docs" / "schema" / "device-status-v1.json").read_text())
    assert published == json.loads(json.dumps(status_json_schema()))


@given(st.binary(max_size=400))
def test_any_bytes_decode_or_refuse_with_a_reason(payload: bytes) -> None:
    try:
        decode_status(payload)
    except WireError as exc:
        assert exc.reason
