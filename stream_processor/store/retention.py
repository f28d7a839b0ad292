"""The sweep's queries, shared by both stores: each costs what it finds, never the table.

The sweeper runs every minute beside a writer that inserts thousands of rows a second.
A query that reads every stored row (DISTINCT or GROUP BY over ``events``, a search
with ``occurred_at_ms < ? OR expires_at_ms <= ?`` that no single index serves, a
``counted_events`` scan) grows with the store; one that does so inside a write
transaction holds the write lock that long, and the writer waits (the soak's ingest
stalls: 4 s at 3 M rows, 33 s at 26 M). So:

- the groups are found by skipping through the rule index, one seek per group;
- rows past their group's cutoff are a range of the rule index (tenant, site, kind,
  purpose, occurred_at_ms); rows past their stamped deadline a range of the expiry
  index, read in pages of ``batch_size`` rows;
- every write transaction deletes at most ``batch_size`` rows it found by an index;
- the per-group summary reads the rule index alone (no row is looked up).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from stream_processor.store.base import GroupAge, GroupOldest, RetentionCutoff, SiteKindCounts

#: The sweep's way to expired counted-only ids (see once.py): without it, each sweep
#: read the whole table inside a write transaction. One B-tree insert per counted id
#: costs the writer less than that lock.
COUNTED_EXPIRY_INDEX = (
    "CREATE INDEX IF NOT EXISTS counted_by_expiry ON counted_events (expires_at_ms)"
)

Group = tuple[str, str, str, str]

_GROUP_COLS = "tenant, site, kind, purpose"
_FIRST_GROUP = f"SELECT {_GROUP_COLS} FROM events ORDER BY {_GROUP_COLS} LIMIT 1"  # noqa: S608
#: The row value names the rule index's fifth column too, past any stored time: with
#: four columns SQLite stepped through every entry of the group before it, not over it.
_NEXT_GROUP = (
    f"SELECT {_GROUP_COLS} FROM events "  # noqa: S608
    f"WHERE ({_GROUP_COLS}, occurred_at_ms) > (?, ?, ?, ?, {2**62}) "
    f"ORDER BY {_GROUP_COLS} LIMIT 1"
)
_IN_GROUP = "tenant = ? AND site = ? AND kind = ? AND purpose = ?"
_PAST_RULE = f"{_IN_GROUP} AND occurred_at_ms < ?"
_COUNT_PAST_RULE = f"SELECT count(*) FROM events WHERE {_PAST_RULE}"  # noqa: S608
_PAST_RULE_IDS = f"SELECT event_id FROM events WHERE {_PAST_RULE} LIMIT ?"  # noqa: S608
#: One page of rows past their stamped deadline, in expiry index order; the lower
#: bound repeats the row value's first column so that either engine seeks on it.
_PAST_STAMP_PAGE = (
    f"SELECT expires_at_ms, event_id, {_GROUP_COLS}, occurred_at_ms FROM events "  # noqa: S608
    "WHERE expires_at_ms <= ? AND expires_at_ms >= ? AND (expires_at_ms, event_id) > (?, ?) "
    "ORDER BY expires_at_ms, event_id LIMIT ?"
)
_GROUP_SUMMARY = f"SELECT count(*), min(occurred_at_ms) FROM events WHERE {_IN_GROUP}"  # noqa: S608
_GROUP_OLDEST = f"SELECT min(occurred_at_ms) FROM events WHERE {_IN_GROUP}"  # noqa: S608
_EXPIRED_COUNTED_IDS = "SELECT event_id FROM counted_events WHERE expires_at_ms <= ? LIMIT ?"


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...


class Engine(Protocol):
    """The hooks of ``SqlStore`` the sweep's queries run on."""

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor: ...

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def _sql(self, sql: str) -> str: ...

    def _transaction(self) -> AbstractContextManager[None]: ...


def delete_ids_sql(table: str, n: int, returning: str = "") -> str:
    """Delete by a list of primary keys. Ids are read first and deleted by list, not by
    ``IN (SELECT ...)``: PostgreSQL may plan that semi-join as a hash over the table."""
    suffix = f" RETURNING {returning}" if returning else ""
    return f"DELETE FROM {table} WHERE event_id IN ({', '.join('?' * n)}){suffix}"  # noqa: S608


def _delete_found(db: Engine, table: str, find: str, params: Sequence[Any]) -> int:
    """One transaction: the ids ``find`` selects (an index search with a LIMIT), deleted."""
    with db._transaction():
        ids = [r[0] for r in db._query(find, params)]
        if not ids:
            return 0
        return max(db._execute(db._sql(delete_ids_sql(table, len(ids))), ids).rowcount, 0)


def retention_groups(db: Engine) -> list[Group]:
    """Distinct (tenant, site, kind, purpose): one rule-index seek per group."""
    out: list[Group] = []
    rows = db._query(_FIRST_GROUP)
    while rows:
        group: Group = (rows[0][0], rows[0][1], rows[0][2], rows[0][3])
        out.append(group)
        rows = db._query(_NEXT_GROUP, group)
    return out


def _add(out: SiteKindCounts, key: tuple[str, str, str], n: int) -> None:
    if n:
        out[key] = out.get(key, 0) + n


def _stamp_pages(db: Engine, now_ms: int, batch_size: int) -> Any:
    """Pages of (expires, event_id, tenant, site, kind, purpose, occurred) past their
    stamped deadline; each page is read when the previous one has been used."""
    after: tuple[int, str] = (-(2**62), "")
    while True:
        page = db._query(_PAST_STAMP_PAGE, (now_ms, after[0], after[0], after[1], batch_size))
        if page:
            yield page
        if len(page) < batch_size:
            return
        after = (int(page[-1][0]), str(page[-1][1]))


def count_expired(
    db: Engine, cutoffs: Sequence[RetentionCutoff], now_ms: int, batch_size: int = 5000
) -> SiteKindCounts:
    """Rows past their group's cutoff, plus rows of the same groups past their stamp
    that the cutoff does not already count."""
    out: SiteKindCounts = {}
    cut: dict[Group, int] = {}
    for c in cutoffs:
        cut[(c.tenant, c.site, c.kind, c.purpose)] = c.cutoff_ms
        params = (c.tenant, c.site, c.kind, c.purpose, c.cutoff_ms)
        _add(out, (c.tenant, c.site, c.kind), int(db._query(_COUNT_PAST_RULE, params)[0][0]))
    for page in _stamp_pages(db, now_ms, batch_size):
        for _, _, tenant, site, kind, purpose, occurred in page:
            cutoff = cut.get((tenant, site, kind, purpose))
            if cutoff is not None and occurred >= cutoff:
                _add(out, (tenant, site, kind), 1)
    return out


def delete_expired(
    db: Engine, cutoffs: Sequence[RetentionCutoff], now_ms: int, batch_size: int = 5000
) -> SiteKindCounts:
    """Delete what ``count_expired`` counts, at most ``batch_size`` rows per transaction."""
    out: SiteKindCounts = {}
    for c in cutoffs:
        params = (c.tenant, c.site, c.kind, c.purpose, c.cutoff_ms, batch_size)
        while True:
            n = _delete_found(db, "events", _PAST_RULE_IDS, params)
            _add(out, (c.tenant, c.site, c.kind), n)
            if n < batch_size:
                break
    wanted = {(c.tenant, c.site, c.kind, c.purpose) for c in cutoffs}
    for page in _stamp_pages(db, now_ms, batch_size):
        ids = [r[1] for r in page if (r[2], r[3], r[4], r[5]) in wanted]
        if not ids:
            continue
        # RETURNING: a row an erasure deleted since the page was read is not counted.
        with db._transaction():
            gone = db._query(delete_ids_sql("events", len(ids), "tenant, site, kind"), ids)
        for tenant, site, kind in gone:
            _add(out, (tenant, site, kind), 1)
    return out


def group_ages(db: Engine) -> list[GroupAge]:
    """Rows and oldest row per group, read from the rule index alone (the count reads
    each group's entries: for a reader's page, not for every sweep). The earliest
    stamped expiry per group is not given: no index holds it per group, and finding it
    looked up every stored row."""
    out: list[GroupAge] = []
    for group in retention_groups(db):
        n, oldest = db._query(_GROUP_SUMMARY, group)[0]
        if n:
            out.append(GroupAge(*group, int(n), int(oldest), None))
    return out


def group_oldest(db: Engine) -> list[GroupOldest]:
    """The oldest row per group: two index seeks per group, whatever the store's size."""
    out: list[GroupOldest] = []
    for group in retention_groups(db):
        (oldest,) = db._query(_GROUP_OLDEST, group)[0]
        if oldest is not None:
            out.append(GroupOldest(*group, int(oldest)))
    return out


def delete_counted(db: Engine, now_ms: int, batch_size: int = 5000) -> int:
    """Forget counted-only ids past their horizon, ``batch_size`` per transaction."""
    total = 0
    while True:
        n = _delete_found(db, "counted_events", _EXPIRED_COUNTED_IDS, (now_ms, batch_size))
        total += n
        if n < batch_size:
            return total
