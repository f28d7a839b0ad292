"""Property-based tests of the bridge's validation: arbitrary JSON values and mutated
valid events, acks and device statuses are each either accepted — and then read alike by a second,
independent JSON reader, within every bound — or refused with a known reason and
dead-lettered; nothing raises.

``FACEGATE_FUZZ_EXAMPLES`` sets the examples per test (default 300: the whole file in
well under 30 s); docs/testing.md has the long run.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_agent.wire import GateEvent, decode_event, encode_event, new_event_id
from edge_agent.wire.bounds import MAX_SAFE_INT, MAX_TIME_MS, MIN_TIME_MS
from edge_agent.wire.commands import CommandAck, decode_ack
from edge_agent.wire.decoding import duplicate_key
from edge_agent.wire.status import DeviceStatus, decode_status, status_topic
from edge_agent.wire.topics import DeviceIdentity, ack_topic, event_topic
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.bridge.validate import REASONS, Accepted, Rejected, check_any
from stream_processor.dead_letter import DeadLetter, decode_dead_letter

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("FACEGATE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ME = DeviceIdentity("acme", "site-1", "gate-1", "cam-1")
LIMITS = BridgeSettings().limits()
NOW_MS = int(time.time() * 1000)
SUBJECT = "ps1_" + "0123456789abcdef" * 2
FIELDS = {f.name for f in msgspec.structs.fields(GateEvent)}

# -- arbitrary JSON, written the way a careless or hostile encoder would -----------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from([-1, 0, MAX_SAFE_INT, MAX_SAFE_INT + 1, 2**63 - 1, 2**63, 2**64])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=30,
)


def dumps(value: Any) -> bytes:
    """Python's encoder: writes NaN/Infinity bare and any integer, as hostile peers do."""
    return json.dumps(value, separators=(",", ":")).encode()


@st.composite
def raw_payloads(draw: st.DrawFn) -> bytes:
    """JSON values, deep nests, duplicate keys and bytes that are not UTF-8."""
    kind = draw(st.sampled_from(["value", "deep", "duplicate", "bytes", "utf8"]))
    if kind == "value":
        return dumps(draw(json_values))
    if kind == "deep":
        depth = draw(st.integers(1, 20_000))
        opener = draw(st.sampled_from([b"[", b'{"a":', b'{"seq":[']))
        return opener * depth + draw(st.sampled_from([b"", b"1", b"]" * depth]))
    if kind == "duplicate":
        key = draw(st.sampled_from(sorted(FIELDS)) | st.text(max_size=8))
        first, second = dumps(draw(json_values)), dumps(draw(json_values))
        return b"{" + dumps(key) + b":" + first + b"," + dumps(key) + b":" + second + b"}"
    if kind == "bytes":
        return draw(st.binary(max_size=600))
    return dumps(draw(json_values)) + draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80"]))


# -- valid events and the ways to spoil them ---------------------------------------------


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["face_match", "key_card", "pin", "manual_open", "unknown_face"]))
    doc: dict[str, Any] = {
        "schema_version": 1, "event_id": new_event_id(), "seq": draw(st.integers(0, MAX_SAFE_INT)),
        "tenant": ME.tenant, "site": ME.site, "gate": ME.gate, "device": ME.device,
        "kind": kind, "decision": "granted", "purpose": "access_control",
        "occurred_at_ms": NOW_MS - draw(st.integers(-LIMITS.max_skew_ms, LIMITS.max_age_ms)),
    }  # fmt: skip
    if kind in ("face_match", "key_card", "pin"):
        doc["subject"] = SUBJECT
    if kind in ("face_match", "unknown_face"):
        doc["score_band"] = draw(st.sampled_from(["low", "medium", "high"]))
        doc["model"] = draw(st.sampled_from(["sim", "blazeface+mfn"]))
    if kind == "unknown_face":
        doc.update(decision="denied", reason="no_match")
    return doc


BOUNDARY_NUMBERS = [
    -(2**64), -(2**63) - 1, -(2**31) - 1, -1, 0, 1, 2**31 - 1, 2**31, 2**32,
    MAX_SAFE_INT, MAX_SAFE_INT + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**400,
    MIN_TIME_MS - 1, MIN_TIME_MS, MAX_TIME_MS, MAX_TIME_MS + 1,
    NOW_MS + LIMITS.max_skew_ms, NOW_MS + LIMITS.max_skew_ms + 1,
    NOW_MS - LIMITS.max_age_ms - 1, 0.5, 1e308, -1e308, 5e-324, -0.0, 2.0**63, 2.0**64,
    float(MIN_TIME_MS), float(NOW_MS),
]  # fmt: skip


NUMERIC = ["seq", "occurred_at_ms", "schema_version"]
IDS = ["tenant", "site", "gate", "device"]


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    doc = draw(valid_events())
    names = sorted(doc)
    ops = ["keep", "swap", "number", "time", "identity", "type", "drop", "extra", "null"]
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(ops))
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        if op == "swap":
            doc[a], doc[b] = doc.get(b), doc.get(a)
        elif op == "number":
            number = draw(st.sampled_from(BOUNDARY_NUMBERS))
            doc[draw(st.sampled_from(NUMERIC) | st.just(a))] = number
        elif op == "time":
            doc["occurred_at_ms"] = draw(st.integers(MIN_TIME_MS, MAX_TIME_MS))
        elif op == "identity":
            doc[draw(st.sampled_from(IDS))] = draw(st.sampled_from(["acme", "site-2", "cam-9"]))
        elif op == "type":
            doc[a] = draw(scalars | json_values)
        elif op == "drop":
            doc.pop(a, None)
        elif op == "extra":
            doc[draw(st.sampled_from(["image", "embedding", "name", "x"]))] = draw(json_values)
        elif op == "null":
            doc[a] = None
    payload = dumps(doc)
    if draw(st.booleans()):  # a second copy of a key, spliced in as bytes
        key = draw(st.sampled_from(names))
        again = draw(st.just(doc.get(key)) | st.sampled_from(list(doc.values())) | scalars)
        payload = payload[:-1] + b"," + dumps(key) + b":" + dumps(again) + b"}"
    edit = draw(st.sampled_from(["none", "none", "none", "flip", "truncate", "insert"]))
    if edit == "flip" and payload:
        i = draw(st.integers(0, len(payload) - 1))
        payload = payload[:i] + bytes([payload[i] ^ draw(st.integers(1, 255))]) + payload[i + 1 :]
    elif edit == "truncate":
        payload = payload[: draw(st.integers(0, len(payload)))]
    elif edit == "insert":
        i = draw(st.integers(0, len(payload)))
        payload = payload[:i] + draw(st.binary(min_size=1, max_size=4)) + payload[i:]
    return payload


# -- the property ---------------------------------------------------------------------------


def second_reading(payload: bytes) -> dict[str, Any]:
    """Python's own parser, which keeps big ints and NaN: it must agree with what passed."""
    assert duplicate_key(payload) is None
    doc = json.loads(payload)
    assert isinstance(doc, dict)
    return doc


def assert_validated(topic: str, payload: bytes) -> None:
    kind, verdict = check_any(topic, payload, LIMITS, NOW_MS)
    event(f"{kind}: {verdict.reason if isinstance(verdict, Rejected) else 'accepted'}")
    if isinstance(verdict, Rejected):
        assert verdict.reason in REASONS, verdict
        assert verdict.detail
        letter = DeadLetter.build(payload, verdict.reason, verdict.detail, topic, NOW_MS, "bridge")
        assert decode_dead_letter(letter.encode()).reason == verdict.reason
        return
    assert isinstance(verdict, Accepted) and verdict.value == payload
    doc = second_reading(payload)
    decoders = {"event": decode_event, "ack": decode_ack, "status": decode_status}
    decoded: GateEvent | CommandAck | DeviceStatus = decoders[kind](payload)
    builtins = msgspec.to_builtins(decoded)
    assert set(doc) <= set(msgspec.structs.asdict(decoded))
    for name, value in msgspec.structs.asdict(decoded).items():
        assert doc.get(name) == builtins.get(name), name
        if isinstance(value, int):
            assert -MAX_SAFE_INT <= value <= MAX_SAFE_INT
    if isinstance(decoded, GateEvent):
        assert decoded == decode_event(encode_event(decoded))
        assert -LIMITS.max_age_ms <= decoded.occurred_at_ms - NOW_MS <= LIMITS.max_skew_ms
        assert verdict.key == f"{ME.tenant}/{ME.site}".encode()


@FUZZ
@given(raw_payloads())
def test_arbitrary_json_is_accepted_consistently_or_refused(payload: bytes) -> None:
    assert_validated(event_topic(ME), payload)
    assert_validated(ack_topic(ME), payload)
    assert_validated(status_topic(ME), payload)


@FUZZ
@given(mutated_events())
def test_mutated_events_are_accepted_consistently_or_refused(payload: bytes) -> None:
    assert_validated(event_topic(ME), payload)


@FUZZ
@given(valid_events())
def test_valid_events_pass(doc: dict[str, Any]) -> None:
    payload = dumps(doc)
    _, verdict = check_any(event_topic(ME), payload, LIMITS, NOW_MS)
    assert isinstance(verdict, Accepted), verdict
    assert_validated(event_topic(ME), payload)


@FUZZ
@given(valid_events(), st.data())
def test_a_repeated_key_is_always_refused(doc: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(doc)))
    again = data.draw(st.just(doc[key]) | st.sampled_from(list(doc.values())))
    spelled = data.draw(st.sampled_from([key, key.replace("e", "\\u0065", 1)]))
    payload = dumps(doc)
    at = data.draw(st.sampled_from(["end", "start"]))
    member = b'"' + spelled.encode() + b'":' + dumps(again)
    if at == "end":
        payload = payload[:-1] + b"," + member + b"}"
    else:
        payload = b"{" + member + b"," + payload[1:]
    _, verdict = check_any(event_topic(ME), payload, LIMITS, NOW_MS)
    assert isinstance(verdict, Rejected), payload
    assert verdict.reason in REASONS, verdict  # a wrong first value may be refused first
    if again == doc[key]:  # both values are valid: only the repetition is wrong
        assert verdict.reason == "duplicate_key", verdict


@st.composite
def mutated_acks(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {
        "schema_version": 1, "command_id": new_event_id(), "type": "erase_subject",
        "tenant": ME.tenant, "site": ME.site, "gate": ME.gate, "device": ME.device,
        "subject": SUBJECT, "status": "done", "templates_removed": 1,
        "outbox_events_purged": 3, "acked_at_ms": NOW_MS,
        "detail": draw(st.text(max_size=60)),
    }  # fmt: skip
    name = draw(st.sampled_from(sorted(doc)))
    if draw(st.booleans()):
        doc[name] = draw(st.sampled_from(BOUNDARY_NUMBERS) | scalars | json_values)
    payload = dumps(doc)
    if draw(st.booleans()):
        again = draw(st.sampled_from(list(doc.values())) | scalars)
        payload = payload[:-1] + b"," + dumps(name) + b":" + dumps(again) + b"}"
    return payload


@FUZZ
@given(mutated_acks())
def test_mutated_acks_are_accepted_consistently_or_refused(payload: bytes) -> None:
    assert_validated(ack_topic(ME), payload)


@st.composite
def mutated_statuses(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {
        "schema_version": 1, "tenant": ME.tenant, "site": ME.site, "gate": ME.gate,
        "device": ME.device, "sent_at_ms": NOW_MS, "uptime_s": 3600, "outbox_depth": 12,
        "oldest_queued_age_s": 4.5, "gallery_templates": 812,
        "models": draw(st.lists(st.sampled_from(["a", "b-1", "x.y"]), max_size=9)),
        "frames_per_s": draw(st.floats(0, 1000)), "decision_latency_ms": 21.3,
        "software_version": "0.1.0",
    }  # fmt: skip
    name = draw(st.sampled_from(sorted(doc)))
    if draw(st.booleans()):
        doc[name] = draw(st.sampled_from(BOUNDARY_NUMBERS) | scalars | json_values)
    payload = dumps(doc)
    if draw(st.booleans()):
        again = draw(st.sampled_from(list(doc.values())) | scalars)
        payload = payload[:-1] + b"," + dumps(name) + b":" + dumps(again) + b"}"
    return payload


@FUZZ
@given(mutated_statuses())
def test_mutated_statuses_are_accepted_consistently_or_refused(payload: bytes) -> None:
    assert_validated(status_topic(ME), payload)
