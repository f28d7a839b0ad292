"""What the per-minute counts promise, whatever mix of stored events, consent
withdrawals and erasures the store sees: a ``stored`` cell counts exactly the rows
that are still stored in it (a withdrawal takes back the counts of the face rows it
deletes, as an erasure does), a discard cell is never touched, and no cell is left at
0. Both stores; rows and counts go in one transaction for a withdrawal too."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_processor.policy.consent import ALL_PURPOSES, ConsentRecord, ConsentStatus, GivenBy
from stream_processor.processor.ledgers import delete_withdrawn
from stream_processor.store.base import (
    STORED_OUTCOME,
    AggregateKey,
    StoredEvent,
    StoreError,
    row_cell,
)
from tests.support.store import OTHER, SUBJ, T0, row

pytestmark = pytest.mark.component

SUBJECTS = (SUBJ, OTHER)
PURPOSES = ("access_control", "visitor_management")
KINDS = ("face_match", "key_card")
GATES = ("g1", "g2")


def withdrawal(subject: str, purpose: str) -> ConsentRecord:
    return ConsentRecord(
        tenant="t1",
        site="s1",
        subject=subject,
        purpose=purpose,
        status=ConsentStatus.WITHDRAWN,
        given_by=GivenBy.SELF,
        at_ms=T0,
    )


def clear(store: Any) -> None:
    """A fresh store per generated example (the fixture's store is per test)."""
    with store._transaction():
        for table in ("events", "aggregates_minute", "erasure_deletions", "counted_events"):
            store._execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names


events = st.builds(
    lambda i, subject, purpose, kind, gate, minute: row(
        i,
        subject=subject,
        purpose=purpose,
        kind=kind,
        gate=gate,
        occurred_at_ms=T0 + minute * 60_000 + i % 60_000,
    ),
    st.integers(0, 10**6),
    st.sampled_from(SUBJECTS),
    st.sampled_from(PURPOSES),
    st.sampled_from(KINDS),
    st.sampled_from(GATES),
    st.integers(0, 2),
)
steps = st.one_of(
    st.tuples(st.just("store"), st.lists(events, min_size=1, max_size=6)),
    st.tuples(
        st.just("withdraw"), st.sampled_from(SUBJECTS), st.sampled_from((*PURPOSES, ALL_PURPOSES))
    ),
    st.tuples(
        st.just("erase"),
        st.sampled_from(SUBJECTS),
        st.one_of(st.none(), st.lists(st.sampled_from(PURPOSES), max_size=2)),
    ),
)


def discard_cell(r: StoredEvent) -> AggregateKey:
    return row_cell(r)._replace(outcome="no_consent")


def apply(store: Any, step: tuple[Any, ...], kept: dict[str, StoredEvent], n: int) -> None:
    """One step on the store and on the model of what is stored."""
    if step[0] == "store":
        batch = [r for r in {r.event_id: r for r in step[1]}.values()]
        counts = Counter(row_cell(r) for r in batch)
        # An unknown face counted at the same minute and gate: never stored, never taken.
        counted = [(f"c-{n}-{i}", tuple(discard_cell(r))) for i, r in enumerate(batch)]
        counts.update(discard_cell(r) for r in batch)
        store.write_batch(batch, dict(counts), counted)
        for r in batch:
            kept.setdefault(r.event_id, r)
    elif step[0] == "withdraw":
        gone = {
            k
            for k, r in kept.items()
            if r.subject == step[1]
            and r.kind == "face_match"
            and step[2] in (ALL_PURPOSES, r.purpose)
        }
        assert delete_withdrawn(store, withdrawal(step[1], step[2])) == len(gone)
        for k in gone:
            del kept[k]
    else:
        gone = {
            k
            for k, r in kept.items()
            if r.subject == step[1] and (step[2] is None or r.purpose in step[2])
        }
        assert store.erase_subject(f"req-{n}", "t1", "s1", step[1], step[2]).rows == len(gone)
        for k in gone:
            del kept[k]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(steps, min_size=1, max_size=8))
def test_stored_counts_equal_the_rows_after_any_withdrawals_and_erasures(
    store: Any, plan: list[tuple[Any, ...]]
) -> None:
    clear(store)
    kept: dict[str, StoredEvent] = {}
    discards: Counter[AggregateKey] = Counter()
    for n, step in enumerate(plan):
        apply(store, step, kept, n)
        if step[0] == "store":
            discards.update(discard_cell(r) for r in {r.event_id: r for r in step[1]}.values())
        counts = store.aggregates("t1", 0)
        stored = {k: v for k, v in counts.items() if k.outcome == STORED_OUTCOME}
        assert stored == dict(Counter(row_cell(r) for r in kept.values()))
        assert {k: v for k, v in counts.items() if k.outcome != STORED_OUTCOME} == dict(discards)
        assert all(v > 0 for v in counts.values())  # a cell taken to 0 is gone
    assert {r.event_id for r in store.all_events()} == set(kept)


class Killed(StoreError):
    """Stands for the worker dying after the delete, before the take-back."""


def test_a_withdrawal_that_fails_before_the_take_back_deletes_nothing(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [row(i) for i in range(12)] + [
        row(50 + i, kind="key_card", event_id=f"k-{i}") for i in range(3)
    ]
    counts = dict(Counter(row_cell(r) for r in rows))
    store.write_batch(rows, counts)

    def die(taken: Any) -> None:
        raise Killed("killed between the steps")

    monkeypatch.setattr(store, "_take_back", die)
    with pytest.raises(Killed):
        delete_withdrawn(store, withdrawal(SUBJ, ALL_PURPOSES))
    assert len(store.events_of_subject("t1", "s1", SUBJ)) == len(rows)
    assert store.aggregates("t1", 0) == counts

    monkeypatch.undo()
    assert delete_withdrawn(store, withdrawal(SUBJ, ALL_PURPOSES)) == 12
    # The key cards need no consent: their rows and counts stay.
    assert store.aggregates("t1", 0) == dict(Counter(row_cell(r) for r in rows[12:]))
    # A second pass (the sweeper's recheck) finds nothing and takes nothing back.
    assert delete_withdrawn(store, withdrawal(SUBJ, ALL_PURPOSES)) == 0
    assert store.aggregates("t1", 0) == dict(Counter(row_cell(r) for r in rows[12:]))
