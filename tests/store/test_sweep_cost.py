"""The retention sweep on a store of a million rows: its queries are index searches
(no pass over ``events`` or ``counted_events``), and a writer beside it never waits
long for the write lock. Both stores.

The soak found ingest stalls every sweep, growing with the store (4 s at 3 M rows,
33 s at 26 M): the sweep read whole groups inside its write transactions.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from stream_processor.processor.sweeper import sweep
from stream_processor.store import retention
from stream_processor.store.base import AggregateKey
from tests.support.store import T0, open_store, row

pytestmark = pytest.mark.component

ROWS = 1_000_000
GROUPS = [("t1", f"s{i}", kind, "access_control") for i in range(4) for kind in ("a", "b")]
#: Rows past their stamp (the first of each group's 250th) and past the "s0/a" rule.
STAMPED_EVERY = 250
RULE_CUT_MS = T0 + 2_000
NOW = T0 + 10**7
#: A writer's batch waits for at most one sweep transaction (≤ ``BATCH`` rows found by
#: an index and deleted, tens of ms) plus its own commit; 1 s leaves room for a loaded
#: 2-core machine while the unindexed sweep held the lock for a whole group scan.
WORST_BATCH_S = 1.0
BATCH = 2000


def _fill_sqlite(store: Any) -> None:
    n = len(GROUPS)
    sites = " ".join(f"WHEN {i} THEN '{s}' " for i, (_, s, _, _) in enumerate(GROUPS))
    kinds = " ".join(f"WHEN {i} THEN '{k}' " for i, (_, _, k, _) in enumerate(GROUPS))
    store._db.execute("BEGIN")
    store._db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO events SELECT printf('r-%09d', i), i, 't1', "
        f"CASE i % {n} {sites} END, 'g1', 'd1', CASE i % {n} {kinds} END, 'granted', "
        f"'access_control', {T0} + i, NULL, NULL, NULL, NULL, NULL, {T0}, "
        f"CASE WHEN i % {STAMPED_EVERY} = 0 THEN {T0} + 5 ELSE {NOW * 2} END FROM n",
        (ROWS - 1,),
    )
    store._db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO counted_events (event_id, expires_at_ms) SELECT printf('c-%09d', i), "
        f"CASE WHEN i % {STAMPED_EVERY} = 0 THEN {T0} + i ELSE {NOW * 2} END FROM n",
        (ROWS // 4 - 1,),
    )
    store._db.execute("COMMIT")


def _secondary_indexes_of_events() -> list[str]:
    """The store's own statements for its secondary indexes on ``events``."""
    from stream_processor.store.postgres import _MIGRATIONS

    return [
        sql
        for statements in _MIGRATIONS.values()
        for sql in statements
        if sql.startswith("CREATE INDEX") and " ON events " in sql
    ]


def _fill_postgres(store: Any) -> None:
    """Rows first, then the store's indexes built over them: a million index inserts
    one by one took most of the test's time."""
    n = len(GROUPS)
    names = [r[0] for r in store._query(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'events' AND indexname <> 'events_pkey'"
    )]  # fmt: skip
    for name in names:
        store._execute(f"DROP INDEX {name}")
    sites = "ARRAY[" + ", ".join(f"'{s}'" for _, s, _, _ in GROUPS) + "]"
    kinds = "ARRAY[" + ", ".join(f"'{k}'" for _, _, k, _ in GROUPS) + "]"
    store._execute(
        "INSERT INTO events SELECT 'r-' || lpad(i::text, 9, '0'), i, 't1', "
        f"({sites})[mod(i, {n}) + 1], 'g1', 'd1', ({kinds})[mod(i, {n}) + 1], 'granted', "
        f"'access_control', {T0} + i, NULL, NULL, NULL, NULL, NULL, {T0}, "
        f"CASE WHEN mod(i, {STAMPED_EVERY}) = 0 THEN {T0} + 5 ELSE {NOW * 2} END "
        "FROM generate_series(0, %s) AS i",
        (ROWS - 1,),
    )
    store._execute(
        "INSERT INTO counted_events (event_id, expires_at_ms) "
        "SELECT 'c-' || lpad(i::text, 9, '0'), "
        f"CASE WHEN mod(i, {STAMPED_EVERY}) = 0 THEN {T0} + i ELSE {NOW * 2} END "
        "FROM generate_series(0, %s) AS i",
        (ROWS // 4 - 1,),
    )
    for sql in _secondary_indexes_of_events():
        if sql.split("EXISTS ")[1].split()[0] in names:
            store._execute(sql)
    assert sorted(r[0] for r in store._query(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'events' AND indexname <> 'events_pkey'"
    )) == sorted(names)  # fmt: skip
    store._execute("ANALYZE events")  # what autovacuum does for a table this size
    store._execute("ANALYZE counted_events")


def _plan(store: Any, sql: str, params: tuple[Any, ...]) -> str:
    if hasattr(store, "_db") and type(store).__name__.startswith("Sqlite"):
        rows = store._db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return "\n".join(str(r[-1]) for r in rows)
    return "\n".join(r[0] for r in store._query("EXPLAIN " + sql, params))


def _assert_indexed(store: Any, sql: str, params: tuple[Any, ...]) -> None:
    plan = _plan(store, sql, params)
    # SQLite: every access is a SEARCH, or an ordered covering-index walk cut by LIMIT 1.
    for line in plan.splitlines():
        assert not line.startswith("SCAN events ") or "COVERING INDEX events_by_rule" in line, plan
        assert line != "SCAN events" and line != "SCAN counted_events", plan
        assert "TEMP B-TREE" not in line, plan
    # PostgreSQL: no sequential scan (a sort or hash only ever sees what a LIMIT let by).
    assert "Seq Scan" not in plan, plan


def _assert_plans(store: Any) -> None:
    group = GROUPS[0]
    for sql, params in [
        (retention._FIRST_GROUP, ()),
        (retention._NEXT_GROUP, group),
        (retention._COUNT_PAST_RULE, (*group, RULE_CUT_MS)),
        (retention._PAST_RULE_IDS, (*group, RULE_CUT_MS, BATCH)),
        (retention._PAST_STAMP_PAGE, (NOW, 0, 0, "", BATCH)),
        (retention._GROUP_SUMMARY, group),
        (retention._EXPIRED_COUNTED_IDS, (NOW, BATCH)),
        (retention.delete_ids_sql("events", 3), ("r-1", "r-2", "r-3")),
        (retention.delete_ids_sql("counted_events", 3), ("c-1", "c-2", "c-3")),
    ]:
        _assert_indexed(store, store._sql(sql), params)


#: SQLite virtual-machine steps the sweep may take per row it deletes (~65 measured) and
#: per group (a few index seeks); the unindexed sweep took ~6 M steps on this store to
#: count the groups alone, more than either bound allows.
STEPS_PER_ROW = 100
STEPS_PER_GROUP = 10_000


def _count_sqlite_steps(store: Any) -> list[int] | None:
    """Thousands of VM steps run on an SQLite store's connection from now on."""
    if not type(store).__name__.startswith("Sqlite"):
        return None
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    store._db.set_progress_handler(tick, 1000)
    return count


class _Policy:
    """A rule of 1 s for site s0's kind "a", none elsewhere (stamps still apply)."""

    def __init__(self) -> None:
        self.tenant = "t1"
        self.version = 1

    def cutoffs(
        self, groups: list[tuple[str, str, str]], now_ms: int
    ) -> list[tuple[str, str, str, int]]:
        return [(s, k, p, RULE_CUT_MS if (s, k) == ("s0", "a") else 0) for s, k, p in groups]

    def retention_ms(self, site: str, kind: str, purpose: str) -> int | None:
        return NOW - RULE_CUT_MS if (site, kind) == ("s0", "a") else None


def _write_during(target: dict[str, str], done: threading.Event) -> list[float]:
    """Batches of new rows written the way the worker writes them, until ``done``."""
    writer = open_store(target)
    latencies: list[float] = []
    key = AggregateKey(T0, "t1", "s0", "g1", "a", "granted", "stored")
    i = 0
    try:
        while not done.is_set():
            rows = [row(ROWS + i + j, site="s0", kind="a", occurred_at_ms=NOW) for j in range(200)]
            i += 200
            start = time.perf_counter()
            writer.write_batch(rows, {key: len(rows)})
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()
    return latencies


def test_a_sweep_of_a_million_rows_searches_indexes_and_never_stalls_the_writer(
    store_target: dict[str, str],
) -> None:
    sweeper = open_store(store_target)
    try:
        (_fill_sqlite if store_target["FACEGATE_STORE"] == "sqlite" else _fill_postgres)(sweeper)
        _assert_plans(sweeper)
        expected_stamped = ROWS // STAMPED_EVERY
        done = threading.Event()
        result: list[list[float]] = []
        thread = threading.Thread(target=lambda: result.append(_write_during(store_target, done)))
        thread.start()
        steps = _count_sqlite_steps(sweeper)
        try:
            time.sleep(0.2)
            policy: Any = _Policy()
            report = sweep(sweeper, lambda t: policy if t == "t1" else None, NOW, BATCH)
        finally:
            done.set()
            thread.join()
        # Row i occurred at T0 + i in group i % 8: s0/a's rows before the cut, plus every
        # stamped row, less those counted in both.
        past_rule = [i for i in range(RULE_CUT_MS - T0) if i % len(GROUPS) == 0]
        both = [i for i in past_rule if i % STAMPED_EVERY == 0]
        assert report.deleted_total == expected_stamped + len(past_rule) - len(both)
        assert report.overdue == {}
        assert report.forgotten == ROWS // 4 // STAMPED_EVERY
        assert {(g.site, g.kind) for g in report.groups} == {(s, k) for _, s, k, _ in GROUPS}
        if steps is not None:  # its work follows what it removes, not the store's size
            work = report.deleted_total + report.forgotten
            assert steps[0] * 1000 <= STEPS_PER_ROW * work + STEPS_PER_GROUP * len(GROUPS)
        latencies = result[0]
        assert len(latencies) >= 3 and max(latencies) < WORST_BATCH_S, sorted(latencies)[-5:]
    finally:
        sweeper.close()
