"""A subject's erasure in the store is one transaction: the rows, their counts in the
per-minute aggregates and the request's tally go together or not at all, and a retry
after a failure between the steps reports exactly what was removed. Both stores."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from stream_processor.store.base import StoredEvent, StoreError, row_cell
from tests.support.store import OTHER, SUBJ, row

pytestmark = pytest.mark.component


class Killed(StoreError):
    """Stands for the worker dying after the delete, before the take-back."""


def fill(store: Any) -> tuple[list[StoredEvent], list[StoredEvent]]:
    mine = [row(i, purpose="access_control" if i % 3 else "visitor_management")
            for i in range(30)]  # fmt: skip
    theirs = [row(100 + i, subject=OTHER, event_id=f"o-{i}") for i in range(10)]
    everything = mine + theirs
    counts = Counter(row_cell(r) for r in everything)
    assert store.write_batch(everything, dict(counts)) == len(everything)
    return mine, theirs


def counts_of(rows: list[StoredEvent]) -> dict[Any, int]:
    return dict(Counter(row_cell(r) for r in rows))


def test_a_failure_between_the_delete_and_the_take_back_leaves_both_undone(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, theirs = fill(store)

    def die(counts: Any) -> None:
        raise Killed("killed between the steps")

    monkeypatch.setattr(store, "_take_back", die)
    with pytest.raises(Killed):
        store.erase_subject("req-1", "t1", "s1", SUBJ)
    # Nothing half done: the rows are there and so are their counts, and no tally.
    assert len(store.events_of_subject("t1", "s1", SUBJ)) == len(mine)
    assert store.aggregates("t1", 0) == counts_of(mine + theirs)
    assert store.erased_rows("req-1") == 0

    monkeypatch.undo()
    erased = store.erase_subject("req-1", "t1", "s1", SUBJ)
    assert (erased.rows, erased.total_rows) == (len(mine), len(mine))
    assert store.events_of_subject("t1", "s1", SUBJ) == []
    # The subject is gone from every cell; the other resident's counts are untouched
    # (cells that counted the subject alone are removed, not left at 0).
    assert store.aggregates("t1", 0) == counts_of(theirs)
    assert len(store.events_of_subject("t1", "s1", OTHER)) == len(theirs)


def test_a_retry_after_a_committed_erasure_reports_the_first_attempts_rows(store: Any) -> None:
    mine, theirs = fill(store)
    store.erase_subject("req-2", "t1", "s1", SUBJ)
    # The worker died after the commit, before its own book heard of it: the retry
    # finds nothing left, and the tally still says what went.
    again = store.erase_subject("req-2", "t1", "s1", SUBJ)
    assert (again.rows, again.total_rows) == (0, len(mine))
    assert store.aggregates("t1", 0) == counts_of(theirs)
    # The tally holds the request id and a number, nothing about the subject.
    assert store._query("SELECT * FROM erasure_deletions") == [("req-2", len(mine))]


def test_a_purpose_scoped_erasure_takes_back_only_its_rows(store: Any) -> None:
    mine, theirs = fill(store)
    visitors = [r for r in mine if r.purpose == "visitor_management"]
    erased = store.erase_subject("req-3", "t1", "s1", SUBJ, ["visitor_management"])
    assert erased.total_rows == len(visitors)
    kept = [r for r in mine if r.purpose != "visitor_management"]
    assert store.aggregates("t1", 0) == counts_of(kept + theirs)
    assert store.erase_subject("req-4", "t1", "s1", SUBJ, []).total_rows == 0


def test_forgetting_a_requests_tally_drops_that_tally_alone(store: Any) -> None:
    mine, theirs = fill(store)
    store.erase_subject("req-4", "t1", "s1", SUBJ)
    store.erase_subject("req-5", "t1", "s1", OTHER)
    store.forget_erasure("req-4")
    store.forget_erasure("req-4")  # a retry of the completion: nothing left, no error
    assert store._query("SELECT * FROM erasure_deletions") == [("req-5", len(theirs))]
    assert store.erased_rows("req-4") == 0
