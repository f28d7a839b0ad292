"""Generated raw-topic records for the processor's fuzz tests, and the check that each
record met one of the two allowed fates: stored exactly as validated and decided, or
dead-lettered with a reason at its coordinates (never lost, never raised)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from hypothesis import strategies as st

from edge_agent.wire import GateEvent
from edge_agent.wire.events import MAX_TIME_MS, MIN_TIME_MS
from stream_processor.dead_letter import DeadLetter
from stream_processor.policy.consent import ConsentState
from stream_processor.policy.decision import CONSENT_KINDS, Store, decide
from stream_processor.policy.retention import CompiledPolicy
from stream_processor.store.base import EventStore, StoredEvent
from tests.processor.service_rig import as_json, decoded
from tests.support.processor import make_event

#: Examples per fuzz test in ``make test``; FACEGATE_FUZZ_EXAMPLES=5000 for a long run.
EXAMPLES = int(os.environ.get("FACEGATE_FUZZ_EXAMPLES", "150"))

NOW_MS = int(time.time() * 1000)
DAY_MS = 86_400_000
KINDS = ["face_match", "unknown_face", "key_card", "pin", "manual_open"]
FIELDS = list(GateEvent.__struct_fields__)

#: The numbers a storage type or a reader stops at: PostgreSQL INTEGER (2**31),
#: BIGINT/SQLite INTEGER (2**63), uint64 (2**64), exact doubles (2**53), the sign.
EXTREME_INTS = [
    -(2**64), -(2**63) - 1, -(2**63), -(2**31) - 1, -1, 0,
    2**31 - 1, 2**31, 2**53 - 1, 2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**400,
]  # fmt: skip
#: Floats at the ends of the double range, and NaN/Infinity (which ``json.dumps`` writes
#: bare, as a careless encoder would).
EXTREME_FLOATS = [1e308, -1e308, 1.7976931348623157e308, 5e-324, -0.0, 2.0**63, 2.0**64]
numbers = (
    st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from(EXTREME_INTS)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(EXTREME_FLOATS)
)
#: The event's numeric fields: where an extreme number is most likely to slip through.
NUMERIC_FIELDS = ["seq", "occurred_at_ms", "schema_version"]

json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event, then one change a hostile or buggy gate might make."""
    event = make_event(
        draw(st.sampled_from(KINDS)),
        subject_id=draw(st.integers(0, 5)),
        seq=draw(st.integers(0, 2**53 - 1)),
        occurred_at_ms=draw(
            st.integers(NOW_MS - 40 * DAY_MS, NOW_MS + DAY_MS)
            | st.integers(MIN_TIME_MS, MAX_TIME_MS)
        ),
        purpose=draw(st.sampled_from(["access_control", "access_control", "parcel_delivery"])),
    )
    body: dict[str, Any] = as_json(event)
    ops = ["keep", "keep", "keep", "set", "number", "drop", "add", "duplicate", "bytes"]
    op = draw(st.sampled_from(ops))
    if op == "set":
        body[draw(st.sampled_from(FIELDS))] = draw(json_values)
    elif op == "number":
        body[draw(st.sampled_from(NUMERIC_FIELDS))] = draw(numbers)
    elif op == "drop":
        body.pop(draw(st.sampled_from(sorted(body))))
    elif op == "add":
        body[draw(st.text(max_size=12))] = draw(json_values)
    text = json.dumps(body)
    if op == "duplicate":
        field = draw(st.sampled_from(sorted(body)))
        text = text[:-1] + f", {json.dumps(field)}: {json.dumps(draw(json_values))}}}"
    raw = text.encode()
    if op == "bytes" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    return raw


raw_values = st.one_of(
    mutated_events(),
    mutated_events(),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


def expected_row(
    raw: bytes, policy: CompiledPolicy, now_ms: int, received_ms: int
) -> tuple[GateEvent | None, StoredEvent | None]:
    """What the validating decoder and the pure decision say should be stored."""
    event = decoded(raw)
    if event is None:
        return None, None
    consent = ConsentState.NONE
    if event.subject is not None and event.kind in CONSENT_KINDS:
        consent = ConsentState.GRANTED
    verdict = decide(event, policy, consent, now_ms, min(received_ms, now_ms))
    if not isinstance(verdict, Store):
        return event, None
    return event, StoredEvent.from_event(event, now_ms, verdict.expires_at_ms)


def check_fate(
    raw: bytes,
    offset: int,
    expected: tuple[GateEvent | None, StoredEvent | None],
    letters: dict[int, DeadLetter],
    store: EventStore,
) -> str:
    """The one property: stored exactly as validated, or dead-lettered with a reason.
    Returns the fate (for ``--hypothesis-show-statistics``)."""
    event, row = expected
    letter = letters.get(offset)
    if event is None:
        assert letter is not None and letter.reason, f"refused record not dead-lettered: {raw!r}"
        return f"dead-lettered: {letter.reason}"
    stored = store.get(event.event_id)
    if letter is not None:  # valid for the contract, refused further on
        assert letter.reason
        assert stored is None
        return f"dead-lettered: {letter.reason}"
    if row is None:
        assert stored is None, "a discarded event was stored"
        return "discarded"
    assert stored == row._replace(stored_at_ms=stored.stored_at_ms if stored else 0)
    return "stored"
