"""The same store suite against SQLite and PostgreSQL (the EventStore Protocol)."""

from __future__ import annotations

from typing import Any

import pytest

from stream_processor.store.base import AggregateKey, RetentionCutoff
from tests.support.store import OTHER, SUBJ, T0, row

pytestmark = pytest.mark.component


def test_put_many_is_idempotent_and_round_trips(store: Any) -> None:
    rows = [row(i) for i in range(100)]
    assert store.put_many(rows) == 100
    assert store.put_many(rows[50:] + [row(100)]) == 1
    assert store.count() == 101
    assert store.get("e-000007") == rows[7]
    assert store.get("nope") is None


def test_write_batch_adds_aggregates_in_one_transaction(store: Any) -> None:
    k1 = AggregateKey(T0, "t1", "s1", "g1", "face_match", "granted", "stored")
    k2 = AggregateKey(T0, "t1", "s1", "g1", "unknown_face", "denied", "unknown_face_counted_only")
    assert store.write_batch([row(1)], {k1: 1, k2: 3}) == 1
    assert store.write_batch([], {k2: 2}) == 0
    assert store.aggregates("t1", T0 - 1) == {k1: 1, k2: 5}
    assert store.aggregates("t2", 0) == {}


def test_a_cell_an_erasure_takes_back_to_zero_is_removed(store: Any) -> None:
    k1 = AggregateKey(T0, "t1", "s1", "g1", "face_match", "granted", "stored")
    k2 = AggregateKey(T0, "t1", "s1", "g2", "face_match", "granted", "stored")
    store.write_batch([], {k1: 2, k2: 3})
    # An erasure adds the subject's contributions back negated.
    store.write_batch([], {k1: -2, k2: -1})
    assert store.aggregates("t1", T0 - 1) == {k2: 2}
    # Taken back where nothing was counted (a cell already gone): no cell appears.
    store.write_batch([], {k1: -1})
    assert store.aggregates("t1", T0 - 1) == {k2: 2}


def test_delete_subject_by_purpose_and_kind(store: Any) -> None:
    store.put_many(
        [
            row(1),
            row(2, purpose="parcel_delivery"),
            row(3, kind="key_card", score_band=None),
            row(4, subject=OTHER),
            row(5, site="s2"),
        ]
    )
    assert [e.event_id for e in store.events_of_subject("t1", "s1", SUBJ)] == [
        "e-000001", "e-000002", "e-000003",
    ]  # fmt: skip
    assert store.delete_subject("t1", "s1", SUBJ, "access_control", kinds=["face_match"]) == 1
    assert store.delete_subject("t1", "s1", SUBJ) == 2
    assert store.count() == 2
    assert store.events_of_subject("t1", "s2", SUBJ)[0].event_id == "e-000005"


def test_retention_counts_equal_deletes_in_batches(store: Any) -> None:
    store.put_many([row(i) for i in range(1000)] + [row(2000 + i, site="s2") for i in range(10)])
    groups = store.retention_groups()
    assert sorted(groups) == [
        ("t1", "s1", "face_match", "access_control"),
        ("t1", "s2", "face_match", "access_control"),
    ]
    cut = [
        RetentionCutoff("t1", "s1", "face_match", "access_control", T0 + 700 * 1000),
        RetentionCutoff("t1", "s2", "face_match", "access_control", 0),
    ]
    now = T0
    counted = store.count_expired(cut, now)
    assert counted == {("t1", "s1", "face_match"): 700}
    deleted = store.delete_expired(cut, now, batch_size=64)
    assert deleted == counted
    assert store.count() == 310
    assert store.delete_expired(cut, now) == {}


def test_expires_at_deadline_is_honoured(store: Any) -> None:
    store.put_many([row(1, expires_at_ms=T0 + 5), row(2, expires_at_ms=T0 + 50)])
    cut = [RetentionCutoff("t1", "s1", "face_match", "access_control", 0)]
    assert store.delete_expired(cut, T0 + 10) == {("t1", "s1", "face_match"): 1}
    assert store.get("e-000002") is not None


def test_group_ages(store: Any) -> None:
    store.put_many([row(5), row(3), row(9, site="s2")])
    ages = store.group_ages()
    assert [(a.site, a.rows, a.oldest_occurred_ms) for a in ages] == [
        ("s1", 2, T0 + 3000),
        ("s2", 1, T0 + 9000),
    ]


def test_schema_is_migrated_once_and_reopens(store_target: dict[str, str]) -> None:
    from tests.support.store import open_store

    a = open_store(store_target)
    b = open_store(store_target)
    try:
        a.put_many([row(1)])
        assert b.count() == 1
        assert a.schema_version == b.schema_version >= 1
    finally:
        a.close()
        b.close()
