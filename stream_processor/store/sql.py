"""The SQL both stores share (SQLite ≥ 3.24 and PostgreSQL speak it alike).

Subclasses provide a connection, a transaction context, the placeholder style
and their migrations; everything a query says is written once, here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from stream_processor.store import retention
from stream_processor.store.base import (
    COLUMNS,
    AggregateKey,
    CountedEvent,
    GroupAge,
    GroupOldest,
    RetentionCutoff,
    SiteKindCounts,
    StoredEvent,
)
from stream_processor.store.erase import SubjectErasure
from stream_processor.store.once import CountedOnce

AGG_COLUMNS = AggregateKey._fields

#: Schema statements common to both engines (types chosen to mean the same in both).
EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS events (
    event_id       TEXT PRIMARY KEY,
    seq            BIGINT NOT NULL,
    tenant         TEXT NOT NULL,
    site           TEXT NOT NULL,
    gate           TEXT NOT NULL,
    device         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    decision       TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    occurred_at_ms BIGINT NOT NULL,
    subject        TEXT,
    score_band     TEXT,
    model          TEXT,
    consent_ref    TEXT,
    reason         TEXT,
    stored_at_ms   BIGINT NOT NULL,
    expires_at_ms  BIGINT
)"""
AGGREGATES_TABLE = """
CREATE TABLE IF NOT EXISTS aggregates_minute (
    minute_ms BIGINT NOT NULL,
    tenant    TEXT NOT NULL,
    site      TEXT NOT NULL,
    gate      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    decision  TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (minute_ms, tenant, site, gate, kind, decision, outcome)
)"""
RETENTION_INDEX = (
    "CREATE INDEX IF NOT EXISTS events_by_rule ON events "
    "(tenant, site, kind, purpose, occurred_at_ms)"
)
#: Migrations of both stores drop the (tenant, site, time) index of their first
#: schema: no query needs it that the rule index above cannot serve.
DROP_SITE_TIME_INDEX = "DROP INDEX IF EXISTS events_by_site_time"
#: A subject's rows (erasure, export) are found by (subject, tenant, site): the index
#: names all three, so SQLite's planner takes it over the rule index without statistics
#: (with the subject alone it guessed that (tenant, site) narrows more and scanned the site).
SUBJECT_INDEX = (
    "CREATE INDEX IF NOT EXISTS events_by_subject_site ON events (subject, tenant, site) "
    "WHERE subject IS NOT NULL"
)
DROP_SUBJECT_ONLY_INDEX = "DROP INDEX IF EXISTS events_by_subject"
AGG_TENANT_INDEX = (
    "CREATE INDEX IF NOT EXISTS aggregates_by_tenant ON aggregates_minute (tenant, minute_ms)"
)

_COLS = ", ".join(COLUMNS)


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...


class SqlStore(CountedOnce, SubjectErasure):
    """Shared queries; ``?`` placeholders are rewritten by ``_sql`` for the engine."""

    placeholder = "?"

    # -- engine hooks -------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        raise NotImplementedError

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` for each row; return how many rows it changed."""
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._execute(self._sql(sql), params).fetchall()

    # -- writes ---------------------------------------------------------------
    _INSERT = (
        f"INSERT INTO events ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))}) "  # noqa: S608
        "ON CONFLICT (event_id) DO NOTHING"
    )
    _AGG = (
        f"INSERT INTO aggregates_minute ({', '.join(AGG_COLUMNS)}, n) "  # noqa: S608
        f"VALUES ({', '.join('?' * (len(AGG_COLUMNS) + 1))}) "
        f"ON CONFLICT ({', '.join(AGG_COLUMNS)}) DO UPDATE SET n = aggregates_minute.n + excluded.n"
    )

    def _insert_rows(self, rows: Sequence[StoredEvent]) -> int:
        if not rows:
            return 0
        return self._executemany(self._sql(self._INSERT), rows)

    # A cell an erasure took back to 0 says "someone passed here then" no more than a
    # missing one does, and a reader of the table could tell the two apart: gone.
    _AGG_DROP_EMPTY = (
        f"DELETE FROM aggregates_minute WHERE {' AND '.join(f'{c} = ?' for c in AGG_COLUMNS)}"  # noqa: S608
        " AND n <= 0"
    )

    def _add_counts(self, counts: Mapping[AggregateKey, int]) -> None:
        if counts:
            self._executemany(self._sql(self._AGG), [(*k, n) for k, n in sorted(counts.items())])
            taken = sorted(k for k, n in counts.items() if n < 0)
            if taken:
                self._executemany(self._sql(self._AGG_DROP_EMPTY), taken)

    def put_many(self, rows: Sequence[StoredEvent]) -> int:
        if not rows:
            return 0
        with self._transaction():
            return self._insert_rows(rows)

    def write_batch(
        self,
        rows: Sequence[StoredEvent],
        counts: Mapping[AggregateKey, int],
        counted: Sequence[CountedEvent] = (),
    ) -> int:
        if not rows and not counts and not counted:
            return 0
        with self._transaction():
            inserted, counts = self._insert_new(rows, counts, counted)
            self._add_counts(counts)
        return inserted

    def delete_counted(self, now_ms: int) -> int:
        return retention.delete_counted(self, now_ms)

    # -- reads ----------------------------------------------------------------
    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM events")[0][0])

    def get(self, event_id: str) -> StoredEvent | None:
        rows = self._query(f"SELECT {_COLS} FROM events WHERE event_id = ?", (event_id,))  # noqa: S608
        return StoredEvent(*rows[0]) if rows else None

    def all_events(self) -> list[StoredEvent]:
        return [StoredEvent(*r) for r in self._query(f"SELECT {_COLS} FROM events")]  # noqa: S608

    def iter_event_ids(self) -> Iterator[str]:
        for (event_id,) in self._query("SELECT event_id FROM events"):
            yield event_id

    def events_of_subject(self, tenant: str, site: str, subject: str) -> list[StoredEvent]:
        rows = self._query(
            f"SELECT {_COLS} FROM events WHERE subject = ? AND tenant = ? AND site = ? "  # noqa: S608
            "ORDER BY occurred_at_ms, event_id",
            (subject, tenant, site),
        )
        return [StoredEvent(*r) for r in rows]

    # -- retention (retention.py: each query costs what it finds, not the table) ----
    def retention_groups(self) -> list[tuple[str, str, str, str]]:
        return retention.retention_groups(self)

    def count_expired(self, cutoffs: Sequence[RetentionCutoff], now_ms: int) -> SiteKindCounts:
        return retention.count_expired(self, cutoffs, now_ms)

    def delete_expired(
        self, cutoffs: Sequence[RetentionCutoff], now_ms: int, batch_size: int = 5000
    ) -> SiteKindCounts:
        return retention.delete_expired(self, cutoffs, now_ms, batch_size)

    def group_ages(self) -> list[GroupAge]:
        return retention.group_ages(self)

    def group_oldest(self) -> list[GroupOldest]:
        return retention.group_oldest(self)

    # -- aggregates ---------------------------------------------------------------
    def aggregates(
        self, tenant: str, since_ms: int, until_ms: int | None = None
    ) -> dict[AggregateKey, int]:
        until = until_ms if until_ms is not None else 2**62
        rows = self._query(
            f"SELECT {', '.join(AGG_COLUMNS)}, n FROM aggregates_minute "  # noqa: S608
            "WHERE tenant = ? AND minute_ms >= ? AND minute_ms < ?",
            (tenant, since_ms, until),
        )
        return {AggregateKey(*r[:-1]): int(r[-1]) for r in rows}
