"""The sweep's split queries (rule range, then stamp pages) delete exactly what the
single ``occurred < cutoff OR expires <= now`` rule said, and count what they delete."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processor.store.base import RetentionCutoff
from stream_processor.store.sqlite import SqliteEventStore
from tests.support.store import T0, row

pytestmark = pytest.mark.component

SITES = ("s1", "s2")
KINDS = ("face_match", "card")

rows_st = st.lists(
    st.tuples(
        st.sampled_from(SITES),
        st.sampled_from(KINDS),
        st.integers(0, 50),  # occurred, seconds after T0
        st.one_of(st.none(), st.integers(0, 50)),  # stamped expiry, seconds after T0
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(
    rows=rows_st,
    cuts=st.dictionaries(
        st.tuples(st.sampled_from(SITES), st.sampled_from(KINDS)), st.integers(0, 60)
    ),
    now_s=st.integers(0, 60),
    batch=st.integers(1, 7),
)
def test_sweep_deletes_and_counts_what_the_rule_says(
    rows: list[tuple[str, str, int, int | None]],
    cuts: dict[tuple[str, str], int],
    now_s: int,
    batch: int,
) -> None:
    stored = [
        row(i, site=s, kind=k, occurred_at_ms=T0 + o * 1000,
            expires_at_ms=None if e is None else T0 + e * 1000)
        for i, (s, k, o, e) in enumerate(rows)
    ]  # fmt: skip
    now = T0 + now_s * 1000
    # Groups without a cutoff in the list are left alone, as the dry run of one tenant does.
    cutoffs = [
        RetentionCutoff("t1", s, k, "access_control", T0 + c * 1000) for (s, k), c in cuts.items()
    ]
    expired = {
        r.event_id
        for r in stored
        if (r.site, r.kind) in cuts
        and (
            r.occurred_at_ms < T0 + cuts[(r.site, r.kind)] * 1000
            or (r.expires_at_ms is not None and r.expires_at_ms <= now)
        )
    }
    want: dict[tuple[str, str, str], int] = {}
    for r in stored:
        if r.event_id in expired:
            want[("t1", r.site, r.kind)] = want.get(("t1", r.site, r.kind), 0) + 1
    with tempfile.TemporaryDirectory(prefix="facegate-retention-") as tmp:
        store = SqliteEventStore(Path(tmp) / "e.db")
        try:
            store.put_many(stored)
            assert store.count_expired(cutoffs, now) == want
            assert store.delete_expired(cutoffs, now, batch_size=batch) == want
            assert {e for e in store.iter_event_ids()} == {r.event_id for r in stored} - expired
            assert store.count_expired(cutoffs, now) == {}
            groups = {(s, k) for s, k, _, _ in rows}
            assert sorted(store.retention_groups()) == sorted(
                ("t1", s, k, "access_control")
                for s, k in groups
                if any(r.site == s and r.kind == k and r.event_id not in expired for r in stored)
            )
        finally:
            store.close()
