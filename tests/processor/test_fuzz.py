"""Fuzzing the processor's decode → decide → store path with generated records:
in-process on real SQLite and PostgreSQL (fast, many examples), and a smaller sample
through the real broker and a worker process. Each record is either stored exactly
as validated and decided, or dead-lettered with a reason; nothing raises.

``FACEGATE_FUZZ_EXAMPLES`` sets the examples per test (docs/testing.md)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stream_processor.dead_letter import decode_dead_letter
from tests.conftest import wait_for
from tests.processor.fuzz import EXAMPLES, check_fate, expected_row, raw_values
from tests.processor.service_rig import Rig, opened
from tests.support.processor import BASE_POLICY, Harness

pytestmark = pytest.mark.component

SHARED_STORE = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SHARED_STORE)
@given(values=st.lists(raw_values, min_size=1, max_size=8))
def test_generated_records_are_stored_as_validated_or_dead_lettered(
    store_target: dict[str, str], values: list[bytes]
) -> None:
    rig = Rig(store_target, int(time.time() * 1000))
    records = [rig.record(v) for v in values]
    rig.run([records])  # raises if anything escapes
    letters = {x.source_offset: x for x in rig.sink.letters if x.source_offset is not None}
    assert len(letters) == len(rig.sink.letters)
    with opened(store_target) as store:
        for r in records:
            assert r.value is not None
            expected = expected_row(r.value, rig.policy, rig.now_ms, r.timestamp)
            event(check_fate(r.value, r.offset, expected, letters, store))


@settings(max_examples=1, deadline=None, suppress_health_check=SHARED_STORE)
@given(values=st.lists(raw_values, min_size=60, max_size=60))
def test_a_generated_sample_through_the_broker_and_a_worker(
    harness: Harness, values: list[bytes]
) -> None:
    from tests.processor.service_rig import compiled

    h = harness
    h.apply_policy(BASE_POLICY)
    sent = [h.producer().send(h.topics.raw, key=b"acme/site-1", value=v) for v in values]
    h.producer().flush(30)
    meta = [f.get(30) for f in sent]
    worker = h.p.start("processor", "worker", name="fuzz")
    sent_at = int(time.time() * 1000)
    policy = compiled()
    expected = [
        expected_row(v, policy, sent_at, m.timestamp) for v, m in zip(values, meta, strict=True)
    ]
    want_rows = sum(row is not None for _, row in expected)
    want_letters = sum(event is None for event, _ in expected)

    def letters() -> dict[int, object]:
        got = [decode_dead_letter(v) for _, v in h.read_topic(h.topics.dlq, timeout_s=2)]
        return {x.source_offset: x for x in got if x.source_offset is not None}

    wait_for(lambda: h.count() >= want_rows and len(letters()) >= want_letters, 90, "a fate each")
    time.sleep(1)
    got = letters()
    for v, m, exp in zip(values, meta, expected, strict=True):
        assert m.partition is not None
        check_fate(v, m.offset, exp, {o: x for o, x in got.items()}, h.store())  # type: ignore[misc]
    assert worker.poll() is None, h.p.log("fuzz")
