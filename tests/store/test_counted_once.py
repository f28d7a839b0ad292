"""Each event id adds to the per-minute aggregates once, however often it is written
(re-deliveries after a broker or worker fault), for stored and counted-only events,
on both stores."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_processor.store.base import (
    COUNTED_HORIZON_MS,
    AggregateKey,
    CountedEvent,
    StoredEvent,
    row_cell,
)
from tests.support.store import T0, row

pytestmark = pytest.mark.component

#: A decided event: its stored row, or (id, cell) when it is counted only.
Decided = StoredEvent | CountedEvent


def stored(i: int, tenant: str = "t1") -> StoredEvent:
    return row(i, tenant=tenant, event_id=f"{tenant}-s{i}")


def counted_only(i: int, tenant: str = "t1", outcome: str = "no_consent") -> CountedEvent:
    cell = AggregateKey(T0 + (i % 3) * 60_000, tenant, "s1", "g2", "face_match", "denied", outcome)
    return (f"{tenant}-c{i}", tuple(cell))  # type: ignore[return-value]


def cell_of(event: Decided) -> AggregateKey:
    if isinstance(event, StoredEvent):
        return row_cell(event)
    return AggregateKey._make(event[1])


def batch_of(
    events: Sequence[Decided],
) -> tuple[list[StoredEvent], dict[AggregateKey, int], list[CountedEvent]]:
    """What the processor hands the store for these events: a copy repeated inside one
    batch is the processor's to drop, as ``enforce_batch`` does."""
    seen: set[str] = set()
    rows: list[StoredEvent] = []
    counted: list[CountedEvent] = []
    counts: Counter[AggregateKey] = Counter()
    for e in events:
        if e[0] in seen:
            continue
        seen.add(e[0])
        if isinstance(e, StoredEvent):
            rows.append(e)
        else:
            counted.append(e)
        counts[cell_of(e)] += 1
    return rows, dict(counts), counted


def write(store: Any, events: Sequence[Decided]) -> int:
    rows, counts, counted = batch_of(events)
    return int(store.write_batch(rows, counts, counted))


def expected(events: Sequence[Decided]) -> dict[AggregateKey, int]:
    first: dict[str, Decided] = {}
    for e in events:
        first.setdefault(e[0], e)
    return dict(Counter(cell_of(e) for e in first.values()))


def test_a_rows_cell_is_the_same_from_a_plain_list() -> None:
    """The writer process receives rows as lists: the cell is read by position."""
    r = row(61, tenant="tx", site="sx", gate="gx", kind="unknown_face", decision="denied")
    minute = (T0 + 61_000) // 60_000 * 60_000
    cell = AggregateKey(minute, "tx", "sx", "gx", "unknown_face", "denied", "stored")
    assert row_cell(list(r)) == row_cell(r) == cell


def test_the_same_batch_written_twice_counts_once(store: Any) -> None:
    events: list[Decided] = [stored(i) for i in range(5)] + [counted_only(i) for i in range(7)]
    assert write(store, events) == 5
    assert write(store, events) == 0
    assert store.aggregates("t1", 0) == expected(events)
    assert store.count() == 5


def test_an_overlapping_batch_counts_only_its_new_events(store: Any) -> None:
    first: list[Decided] = [stored(i) for i in range(10)] + [counted_only(i) for i in range(10)]
    second: list[Decided] = [stored(i) for i in range(5, 15)] + [
        counted_only(i) for i in range(5, 15)
    ]
    write(store, first)
    assert write(store, second) == 5
    assert store.aggregates("t1", 0) == expected(first + second)


def test_an_event_stored_then_redelivered_as_refused_is_not_counted_again(store: Any) -> None:
    """The consent was withdrawn between the two deliveries: the second copy is decided
    differently, but the event was counted with its row already."""
    first = stored(1)
    write(store, [first])
    again: CountedEvent = (first.event_id, tuple(counted_only(1)[1]))  # type: ignore[assignment]
    write(store, [again])
    assert store.aggregates("t1", 0) == {row_cell(first): 1}


def test_an_erasure_take_back_still_applies(store: Any) -> None:
    events: list[Decided] = [stored(i) for i in range(3)]
    write(store, events)
    write(store, events)
    cell = row_cell(events[0])
    store.write_batch([], {cell: -1})
    assert store.aggregates("t1", 0)[cell] == expected(events)[cell] - 1


def test_counted_ids_are_forgotten_after_the_horizon_and_hold_no_subject(store: Any) -> None:
    write(store, [counted_only(i) for i in range(4)])
    assert store.delete_counted(T0) == 0
    rows = store._query("SELECT * FROM counted_events")
    assert len(rows) == 4 and all(len(r) == 2 for r in rows)  # the id and its expiry only
    far = 2 * COUNTED_HORIZON_MS + T0 * 2
    assert store.delete_counted(far) == 4
    assert store._query("SELECT count(*) FROM counted_events")[0][0] == 0


_event = st.one_of(
    st.integers(0, 11).map(lambda i: ("s", i)),
    st.integers(0, 11).map(lambda i: ("c", i)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(_event, max_size=15), min_size=1, max_size=6))
def test_any_repeats_give_the_counts_of_the_distinct_events(
    store: Any, batches: list[list[Any]]
) -> None:
    tenant = f"h{uuid.uuid4().hex[:10]}"  # each example counts in its own tenant

    def make(spec: Any) -> Decided:
        if spec[0] == "s":
            return stored(spec[1], tenant)
        outcome = "no_consent" if spec[1] % 2 else "unknown_face_counted_only"
        return counted_only(spec[1], tenant, outcome)

    written: list[Decided] = []
    for batch in batches:
        events = [make(s) for s in batch]
        write(store, events)
        written.extend(events)
    assert store.aggregates(tenant, 0) == expected(written)


def test_the_retention_sweep_forgets_counted_ids_past_the_horizon(store: Any) -> None:
    from stream_processor.processor.sweeper import sweep

    write(store, [counted_only(i) for i in range(3)])
    now = store._query("SELECT min(expires_at_ms) FROM counted_events")[0][0]
    assert sweep(store, lambda _tenant: None, now - 1).forgotten == 0
    assert sweep(store, lambda _tenant: None, now).forgotten == 3
    # Forgotten ids no longer hold their count back, but the horizon outlives any copy.
    assert store.aggregates("t1", 0) == expected([counted_only(i) for i in range(3)])
