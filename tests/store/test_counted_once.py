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


def counted_in_a_minute(i: int, tenant: str = "t1", outcome: str = "no_consent") -> CountedEvent:
    """A counted-only event whose cell starts on a minute, as the processor's do (a
    stored copy of it counts in the same minute)."""
    event_id, cell = counted_only(i, tenant, outcome)
    return (event_id, (cell[0] - cell[0] % 60_000, *cell[1:]))


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


def expected_final(events: Sequence[Decided]) -> dict[AggregateKey, int]:
    """Each event id counts once: in its stored cell if any copy was stored, else in
    the cell of its first copy."""
    final: dict[str, Decided] = {}
    for e in events:
        if e[0] not in final or (
            isinstance(e, StoredEvent) and not isinstance(final[e[0]], StoredEvent)
        ):
            final[e[0]] = e
    return dict(Counter(cell_of(e) for e in final.values()))


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


def test_an_event_counted_only_then_redelivered_as_stored_counts_once_in_the_stored_cell(
    store: Any,
) -> None:
    """The policy changed between the two deliveries so that the second copy is stored:
    the event counts once, in the stored cell (where an erasure of the row takes it back
    from), and no longer in the first copy's cell."""
    first = counted_in_a_minute(1)
    others = [counted_in_a_minute(i) for i in range(4, 7)]  # same cells, different events
    write(store, [first, *others])
    again = stored(1)._replace(event_id=first[0], occurred_at_ms=first[1][0] + 5, gate="g2",
                               kind="face_match", decision="denied")  # fmt: skip
    assert write(store, [again]) == 1
    assert store.aggregates("t1", 0) == expected([again, *others])
    assert (
        store._query("SELECT count(*) FROM counted_events WHERE event_id = ?", (first[0],))[0][0]
        == 0
    )
    # A third copy, counted-only again, is not counted: its row counted it.
    write(store, [first])
    assert store.aggregates("t1", 0) == expected([again, *others])
    # The erasure's take-back of the row leaves nothing of the event in any cell.
    store.erase_subject("req", "t1", "s1", again.subject)
    assert store.aggregates("t1", 0) == expected(others)


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
    rows = store._query("SELECT event_id, expires_at_ms, outcome FROM counted_events")
    # The id, its expiry and the discard reason it counted under: no subject, no cell.
    assert len(rows) == 4 and all(r[2] == "no_consent" for r in rows)
    columns = store._query("SELECT * FROM counted_events")
    assert all(len(r) == 3 for r in columns)
    far = 2 * COUNTED_HORIZON_MS + T0 * 2
    assert store.delete_counted(far) == 4
    assert store._query("SELECT count(*) FROM counted_events")[0][0] == 0


_event = st.one_of(
    st.integers(0, 11).map(lambda i: ("s", i)),
    st.integers(0, 11).map(lambda i: ("c", i)),
    # An event whose outcome changes on redelivery: stored or counted only.
    st.tuples(st.just("x"), st.integers(0, 5), st.booleans()),
)


def same_event_stored(i: int, tenant: str) -> StoredEvent:
    """The stored copy of ``counted_in_a_minute(i + 100)``: same id, same cell but the
    outcome."""
    event_id, cell = counted_in_a_minute(i + 100, tenant)
    return row(i, tenant=tenant, event_id=event_id, occurred_at_ms=cell[0] + 7, gate="g2",
               kind="face_match", decision="denied")  # fmt: skip


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

    def make_either(spec: Any) -> Decided:
        """The same event id decided either way (the policy or consent changed between
        deliveries): ``("x", i, stored?)``."""
        if spec[2]:
            return same_event_stored(spec[1], tenant)
        return counted_in_a_minute(spec[1] + 100, tenant, "unknown_face_counted_only")

    written: list[Decided] = []
    for batch in batches:
        events = [make(s) if s[0] != "x" else make_either(s) for s in batch]
        write(store, events)
        firsts = {e[0]: e for e in reversed(events)}  # the processor keeps a batch's first copy
        written.extend(firsts.values())
    assert store.aggregates(tenant, 0) == expected_final(written)


def test_the_retention_sweep_forgets_counted_ids_past_the_horizon(store: Any) -> None:
    from stream_processor.processor.sweeper import sweep

    write(store, [counted_only(i) for i in range(3)])
    now = store._query("SELECT min(expires_at_ms) FROM counted_events")[0][0]
    assert sweep(store, lambda _tenant: None, now - 1).forgotten == 0
    assert sweep(store, lambda _tenant: None, now).forgotten == 3
    # Forgotten ids no longer hold their count back, but the horizon outlives any copy.
    assert store.aggregates("t1", 0) == expected([counted_only(i) for i in range(3)])
