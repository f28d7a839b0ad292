"""Every number of the contract is bounded, and the strict decoders refuse what another
reader could take differently: out-of-range numbers, duplicate keys, NaN/Infinity, deep
nesting, invalid UTF-8 — each with its own reason, for events, commands and acks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge_agent.errors import WireError
from edge_agent.wire import GateEvent, decode_event, encode_event, new_event_id
from edge_agent.wire.bounds import MAX_EVENTS_PURGED, MAX_SAFE_INT, MAX_TEMPLATES_REMOVED
from edge_agent.wire.commands import (
    AckStatus,
    CommandAck,
    CommandType,
    EdgeCommand,
    ack_json_schema,
    command_json_schema,
    decode_ack,
    decode_command,
    encode,
)
from edge_agent.wire.decoding import REASONS, duplicate_key, nested_deeper, nesting_depth
from edge_agent.wire.events import event_json_schema
from edge_agent.wire.status import decode_status, status_json_schema

pytestmark = pytest.mark.unit

NOW_MS = int(time.time() * 1000)
SUBJECT = "ps1_" + "ab" * 16


def compact(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def event(**over: Any) -> bytes:
    doc: dict[str, Any] = {
        "schema_version": 1, "event_id": new_event_id(), "seq": 7, "tenant": "acme",
        "site": "site-1", "gate": "north", "device": "cam-1", "kind": "key_card",
        "decision": "granted", "purpose": "access_control", "occurred_at_ms": NOW_MS,
        "subject": SUBJECT,
    }  # fmt: skip
    doc.update(over)
    return compact({k: v for k, v in doc.items() if v is not ...})


def command(**over: Any) -> bytes:
    doc = json.loads(
        encode(
            EdgeCommand(
                schema_version=1, command_id=new_event_id(), type=CommandType.ERASE_SUBJECT,
                tenant="acme", site="site-1", subject=SUBJECT, issued_at_ms=NOW_MS,
            )  # fmt: skip
        )
    )
    doc.update(over)
    return compact(doc)


def ack(**over: Any) -> bytes:
    doc = json.loads(
        encode(
            CommandAck(
                schema_version=1, command_id=new_event_id(), type=CommandType.ERASE_SUBJECT,
                tenant="acme", site="site-1", gate="north", device="cam-1", subject=SUBJECT,
                status=AckStatus.DONE, templates_removed=3, outbox_events_purged=12,
                acked_at_ms=NOW_MS,
            )  # fmt: skip
        )
    )
    doc.update(over)
    return compact(doc)


def reason_of(decode: Callable[[bytes], object], payload: bytes) -> str | None:
    try:
        decode(payload)
    except WireError as exc:
        assert exc.reason in REASONS
        assert exc.detail
        return exc.reason
    return None


def splice(payload: bytes, extra: str) -> bytes:
    """The payload with ``extra`` members added before its closing brace (raw bytes:
    ``json.dumps`` cannot write a key twice)."""
    return payload[:-1] + b"," + extra.encode() + b"}"


EVENT_CASES: list[tuple[str, bytes]] = [
    ("out_of_range", event(seq=10**400)),  # the poison pill of issue 10
    ("out_of_range", event(seq=2**64)),
    ("out_of_range", event(seq=2**63)),
    ("out_of_range", event(seq=MAX_SAFE_INT + 1)),
    ("out_of_range", event(seq=-1)),
    ("out_of_range", event(seq=-(2**64))),
    ("out_of_range", event(occurred_at_ms=NOW_MS * 10)),
    ("out_of_range", event(occurred_at_ms=0)),
    ("duplicate_key", splice(event(), f'"subject":"ps1_{"cd" * 16}"')),
    ("duplicate_key", splice(event(), '"seq":8')),
    ("duplicate_key", splice(event(), '"seq":7')),  # even the same value
    ("duplicate_key", splice(event(), '"s\\u0065q":8')),  # an escaped key is the same key
    ("duplicate_key", splice(event(model=None), '"model":null')),
    ("duplicate_key", b'{"site":"a,b",' + event()[1:]),  # a comma in the first, refused value
    ("non_finite", event().replace(b'"seq":7', b'"seq":NaN')),
    ("non_finite", event().replace(b'"seq":7', b'"seq":Infinity')),
    ("non_finite", event().replace(b'"seq":7', b'"seq":-Infinity')),
    ("out_of_range", event(seq=10**30)),
    ("out_of_range", event().replace(b'"seq":7', b'"seq":1e999')),  # overflows a double
    ("invalid_field", event().replace(b'"seq":7', b'"seq":7.5')),
    ("invalid_field", event().replace(b'"seq":7', b'"seq":1e3')),
    ("too_deep", b"[" * 100_000),
    ("too_deep", b"[" * 10 + b"]" * 10),
    ("too_deep", event(seq=[[[[7]]]])),
    ("too_deep", event(gate={"a": {"b": 1}})),
    ("too_deep", b'{"seq":' + b"[" * 5000),
    ("invalid_field", b"[1,2]"),
    ("invalid_field", b"null"),
    ("invalid_field", b"7"),
    ("invalid_utf8", event(gate="north").replace(b"north", b"n\xffrth")),
    ("invalid_utf8", event().replace(b'"gate":"north"', b'"gate":"\xed\xa0\x80"')),  # CESU
    ("invalid_utf8", event().replace(b'"gate":"north"', b'"gate":"\\ud800"')),
    ("invalid_utf8", event().replace(b'"gate":"north"', b'"gate":"\\udc00x"')),
    ("invalid_utf8", b"\xff\xfe" + event()),
    ("bad_json", b""),
    ("bad_json", b"{"),
    ("bad_json", event()[:-1]),
    ("bad_json", event() + b"}"),
    ("bad_json", b"{'seq': 1}"),
    ("unknown_field", event(image="/9j/AAAA")),
    ("unknown_field", event(embedding=[0.1, 0.2])),
    ("missing_field", event(seq=...)),
    ("invalid_field", event(seq="7")),
    ("invalid_field", event(seq=True)),
    ("invalid_field", event(subject="Zhang San")),
    ("invalid_field", event(gate="north\n")),
]


@pytest.mark.parametrize(("reason", "payload"), EVENT_CASES)
def test_event_refusals_have_distinct_reasons(reason: str, payload: bytes) -> None:
    assert reason_of(decode_event, payload) == reason


def test_bounds_are_inclusive() -> None:
    assert decode_event(event(seq=MAX_SAFE_INT)).seq == MAX_SAFE_INT
    assert decode_event(event(seq=0)).seq == 0


def test_explicit_nulls_and_commas_inside_strings_are_not_duplicates() -> None:
    # Both miss the fast comma count and take the full parse; neither repeats a key.
    with_nulls = event(kind="manual_open", subject=None, model=None, reason=None)
    assert decode_event(with_nulls).subject is None
    spaced = json.dumps(json.loads(event()), indent=2).encode()
    assert decode_event(spaced) == decode_event(event(event_id=json.loads(spaced)["event_id"]))
    detail = ack(detail='removed, "twice", {not json} \\ ok')
    assert decode_ack(detail).detail == 'removed, "twice", {not json} \\ ok'


def test_duplicate_keys_at_any_depth_are_found() -> None:
    assert duplicate_key(b'{"a":1,"b":{"c":1,"c":2}}') == "c"
    assert duplicate_key(b'{"a":[{"x":1},{"y":1,"y":1}]}') == "y"
    assert duplicate_key(b'{"a":1,"b":{"a":1}}') is None
    assert nesting_depth(b'{"a":"[[[[","b":[1,{"c":2}]}') == 3
    assert nesting_depth(b"7") == 0
    assert nested_deeper(b"[[1]]", 1) and not nested_deeper(b"[[1]]", 2)
    assert nested_deeper(b"[" * 1_000_000, 1)  # stops at the second bracket


COMMAND_CASES: list[tuple[str, Callable[[bytes], object], bytes]] = [
    ("out_of_range", decode_command, command(issued_at_ms=10**400)),
    ("duplicate_key", decode_command, splice(command(), '"type":"withdraw_consent"')),
    ("non_finite", decode_command, command().replace(b'_version":1', b'_version":NaN')),
    ("too_deep", decode_command, command(purpose=[["x"]])),
    ("invalid_utf8", decode_command, command().replace(b'"acme"', b'"\xc0\xafacme"')),
    ("out_of_range", decode_ack, ack(templates_removed=MAX_TEMPLATES_REMOVED + 1)),
    ("out_of_range", decode_ack, ack(outbox_events_purged=MAX_EVENTS_PURGED + 1)),
    ("out_of_range", decode_ack, ack(outbox_events_purged=10**400)),
    ("out_of_range", decode_ack, ack(templates_removed=-1)),
    ("duplicate_key", decode_ack, splice(ack(), '"status":"failed"')),
    ("duplicate_key", decode_ack, splice(ack(detail="a, b"), '"detail":"c"')),
    ("non_finite", decode_ack, ack().replace(b'_removed":3', b'_removed":Infinity')),
    ("too_deep", decode_ack, b"{" * 3000),
    ("invalid_utf8", decode_ack, ack(detail="eXe").replace(b"eXe", b"e\xe9e")),
    ("bad_json", decode_ack, b""),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "decode", "payload"), COMMAND_CASES)
def test_command_and_ack_refusals(
    reason: str, decode: Callable[[bytes], object], payload: bytes
) -> None:
    assert reason_of(decode, payload) == reason


def test_command_and_ack_round_trip_at_their_bounds() -> None:
    got = decode_ack(ack(templates_removed=MAX_TEMPLATES_REMOVED, outbox_events_purged=0))
    assert got.templates_removed == MAX_TEMPLATES_REMOVED
    assert decode_command(command()).subject == SUBJECT


def integers(schema: Any) -> Iterator[dict[str, Any]]:
    """Every integer (sub)schema in a JSON Schema document."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            yield schema
        for value in schema.values():
            yield from integers(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from integers(value)


@pytest.mark.parametrize(
    "schema", [event_json_schema, command_json_schema, ack_json_schema, status_json_schema]
)
def test_every_integer_of_the_published_schemas_has_a_maximum(
    schema: Callable[[], dict[str, object]],
) -> None:
    found = list(integers(schema()))
    assert found
    for sub in found:
        assert "minimum" in sub and "maximum" in sub, sub
        assert -MAX_SAFE_INT <= sub["minimum"] <= sub["maximum"] <= MAX_SAFE_INT, sub


def test_a_valid_event_decodes_equal() -> None:
    payload = event()
    got = decode_event(payload)
    assert isinstance(got, GateEvent)
    assert json.loads(encode_event(got)) == json.loads(payload)


def status(**over: Any) -> bytes:
    doc: dict[str, Any] = {
        "schema_version": 1, "tenant": "acme", "site": "site-1", "gate": "north",
        "device": "cam-1", "sent_at_ms": NOW_MS, "uptime_s": 3600, "outbox_depth": 12,
        "oldest_queued_age_s": 4.5, "gallery_templates": 812,
        "models": ["blazeface-back256", "mobilefacenet-192", "x"], "frames_per_s": 14.8,
        "decision_latency_ms": 21.3, "software_version": "0.1.0",
    }  # fmt: skip
    doc.update(over)
    return compact(doc)


@pytest.mark.parametrize(
    ("reason", "payload"),
    [
        (None, status()),  # a list of three: its commas are expected, no full parse
        (None, status(models=[])),
        ("duplicate_key", splice(status(), '"uptime_s":1')),
        ("duplicate_key", splice(status(models=["a"]), '"models":["a","b"]')),
        ("duplicate_key", splice(status(), '"m\\u006fdels":[]')),
        ("out_of_range", status(uptime_s=10**400)),
        ("out_of_range", status(frames_per_s=10**400)),  # a float field: 1e400 overflows
        ("non_finite", status().replace(b'"frames_per_s":14.8', b'"frames_per_s":NaN')),
        ("too_deep", status(models=[["a"]])),
        ("invalid_utf8", status(software_version="eXe").replace(b"eXe", b"e\xffe")),
    ],
)
def test_device_status_refusals(reason: str | None, payload: bytes) -> None:
    assert reason_of(decode_status, payload) == reason
