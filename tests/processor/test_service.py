"""The batch path in-process on real SQLite and PostgreSQL: poison records are
quarantined with reason and coordinates while every valid record is stored once;
retention runs from the time the cloud received an event."""

from __future__ import annotations

import time

import pytest

from edge_agent.wire import encode_event
from stream_processor.processor.service import STORE_REFUSED
from stream_processor.quarantine import Coordinates, Quarantine, Refusal
from stream_processor.store.base import StoredEvent
from tests.processor.service_rig import (
    POISON_GATE,
    Record,
    Rig,
    add_refusing_constraint,
    opened,
    poison_values,
)
from tests.support.processor import make_event

pytestmark = pytest.mark.component

DAY_MS = 86_400_000


def test_poison_among_valid_records_is_quarantined_and_the_rest_stored_once(
    store_target: dict[str, str],
) -> None:
    now = int(time.time() * 1000)
    rig = Rig(store_target, now)
    add_refusing_constraint(store_target, POISON_GATE)
    valid = [make_event("key_card", seq=i, occurred_at_ms=now - i) for i in range(200)]
    refused_by_store = [make_event("key_card", seq=900 + i, gate=POISON_GATE) for i in range(3)]
    poison = poison_values(now)
    values: list[bytes | None] = [encode_event(e) for e in valid]
    # Poison spread through the batch, so bisection has to find each one.
    for i, value in enumerate([*poison, *(encode_event(e) for e in refused_by_store)]):
        values.insert(i * 13 + 5, value)
    records = [rig.record(v) for v in values]
    half = len(records) // 2
    inserted = rig.run([records[:half], records[half:], records])  # the last one: a replay

    assert sum(inserted) == len(valid)
    with opened(store_target) as store:
        assert store.count() == len(valid)
        rule = rig.policy.retention_ms("site-1", "key_card", "access_control")
        assert rule is not None
        for e in valid:
            assert store.get(e.event_id) == StoredEvent.from_event(e, now, e.occurred_at_ms + rule)
    bad = [r for r in records if r.value not in {encode_event(e) for e in valid}]
    letters = rig.sink.letters
    # Every bad record is in the DLQ (the replay refuses them again), with its coordinates.
    assert {(x.source_topic, x.source_partition, x.source_offset) for x in letters} == {
        (r.topic, r.partition, r.offset) for r in bad
    }
    assert all(x.reason and x.stage == "processor" for x in letters)
    store_refused = [x for x in letters if x.reason == STORE_REFUSED]
    assert len(store_refused) >= 2 * len(refused_by_store)
    assert rig.quarantined(STORE_REFUSED) == len(store_refused)
    assert "ps1_" not in "".join(x.detail for x in letters)


def test_a_far_future_event_keeps_its_data_no_longer_than_received_plus_the_rule(
    store_target: dict[str, str],
) -> None:
    now = int(time.time() * 1000)
    rig = Rig(store_target, now)
    ten_years = now + 3650 * DAY_MS
    future = make_event("key_card", seq=1, occurred_at_ms=ten_years)
    past_stamp = make_event("key_card", seq=2, occurred_at_ms=now - DAY_MS)
    lying_stamp = make_event("key_card", seq=3, occurred_at_ms=now)
    received = now - 1000
    records = [
        rig.record(encode_event(future), received_ms=received),
        rig.record(encode_event(past_stamp), received_ms=received),
        # A producer that bypasses the bridge sets the record's time far ahead: the
        # worker's own clock bounds it.
        rig.record(encode_event(lying_stamp), received_ms=ten_years),
    ]
    rig.run([records])
    rule = rig.policy.retention_ms("site-1", "key_card", "access_control")
    assert rule is not None
    with opened(store_target) as store:
        rows = {e.event_id: store.get(e.event_id) for e in (future, past_stamp, lying_stamp)}
    assert rows[future.event_id].expires_at_ms == received + rule  # type: ignore[union-attr]
    assert rows[past_stamp.event_id].expires_at_ms == now - DAY_MS + rule  # type: ignore[union-attr]
    assert rows[lying_stamp.event_id].expires_at_ms == now + rule  # type: ignore[union-attr]
    for row, r in zip(rows.values(), records, strict=True):
        assert row is not None
        assert row.expires_at_ms is not None
        assert row.expires_at_ms <= min(r.timestamp, now) + rig.policy.ceiling_ms


def test_a_refused_record_alone_in_its_batch_is_quarantined(store_target: dict[str, str]) -> None:
    now = int(time.time() * 1000)
    rig = Rig(store_target, now)
    add_refusing_constraint(store_target, POISON_GATE)
    record: Record = rig.record(encode_event(make_event("pin", seq=5, gate=POISON_GATE)))
    assert rig.run([[record]]) == [0]
    [letter] = rig.sink.letters
    assert (letter.reason, letter.source_offset) == (STORE_REFUSED, record.offset)
    with opened(store_target) as store:
        assert store.count() == 0
        assert sum(store.aggregates("acme", 0).values()) == 0  # its count was refused too


class BrokenLetters(Quarantine):
    """A dead-letter builder with a bug for some payloads."""

    def letter(self, raw: bytes | None, refusal: Refusal, at: Coordinates) -> tuple[bytes, bytes]:
        if raw:
            raise ValueError("a bug in the letter's builder")
        return super().letter(raw, refusal, at)


def test_a_dead_letter_that_cannot_be_built_is_sent_without_the_bytes(
    store_target: dict[str, str],
) -> None:
    rig = Rig(store_target, int(time.time() * 1000))
    rig.quarantine_type = BrokenLetters
    records = [rig.record(b"not json"), rig.record(encode_event(make_event("pin", seq=1)))]
    assert rig.run([records]) == [1]
    [letter] = rig.sink.letters
    assert (letter.reason, letter.source_offset, letter.raw_len) == ("bad_json", 1, 0)
