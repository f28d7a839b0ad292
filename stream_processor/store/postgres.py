"""PostgreSQL event store (psycopg 3): several workers write to one database.

Schema creation and migrations run under an advisory lock, so workers that
start together migrate once. Inserts are idempotent (ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from stream_processor.errors import StoreError
from stream_processor.store.base import (
    COLUMNS,
    StoreDataError,
    StoredEvent,
    StoreUnavailable,
)
from stream_processor.store.erase import ERASED_TABLE
from stream_processor.store.once import COUNTED_OUTCOME_COLUMN, COUNTED_TABLE
from stream_processor.store.retention import COUNTED_EXPIRY_INDEX
from stream_processor.store.sql import (
    AGG_TENANT_INDEX,
    AGGREGATES_TABLE,
    DROP_SITE_TIME_INDEX,
    DROP_SUBJECT_ONLY_INDEX,
    EVENTS_TABLE,
    RETENTION_INDEX,
    SUBJECT_INDEX,
    SqlStore,
)

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError(
        "the PostgreSQL store needs psycopg; run: pip install 'facegate[cloud]'", name="psycopg"
    ) from exc

#: Refusals of the values themselves (out of range, a constraint, NUL in text, text
#: that is not valid Unicode): the same rows fail again, other rows may not.
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError, OverflowError, ValueError, TypeError)


def store_error(exc: BaseException) -> StoreError:
    """Which kind of store failure ``exc`` is: the rows' fault or the server's."""
    if isinstance(exc, _DATA_ERRORS):
        return StoreDataError(f"postgres refused the data: {type(exc).__name__}: {exc}")
    return StoreUnavailable(f"postgres cannot write: {type(exc).__name__}: {exc}")


SCHEMA_VERSION = 7
_LOCK_ID = 0x66616365  # "face"

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        EVENTS_TABLE,
        "CREATE INDEX IF NOT EXISTS events_by_site_time ON events (tenant, site, occurred_at_ms)",
        "CREATE INDEX IF NOT EXISTS events_by_subject ON events (subject) "
        "WHERE subject IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS events_by_expiry ON events (expires_at_ms) "
        "WHERE expires_at_ms IS NOT NULL",
        RETENTION_INDEX,
        AGGREGATES_TABLE,
        AGG_TENANT_INDEX,
    ],
    2: [DROP_SITE_TIME_INDEX],
    3: [SUBJECT_INDEX, DROP_SUBJECT_ONLY_INDEX],
    4: [COUNTED_TABLE],
    5: [ERASED_TABLE],
    # The sweep finds expired counted-only ids by an index, not a scan (retention.py).
    6: [COUNTED_EXPIRY_INDEX],
    7: [COUNTED_OUTCOME_COLUMN],
}


class PostgresEventStore(SqlStore):
    placeholder = "%s"

    def __init__(self, dsn: str, connect_timeout_s: float = 10.0) -> None:
        self.dsn = dsn
        try:
            self._db = psycopg.connect(dsn, autocommit=True, connect_timeout=int(connect_timeout_s))
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        self._migrate()
        # Rows are COPYed into a per-connection staging table, then inserted with
        # ON CONFLICT in one statement: far fewer round trips than executemany.
        self._execute(
            "CREATE TEMP TABLE IF NOT EXISTS events_in "
            "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )

    def _insert_rows(self, rows: Sequence[StoredEvent]) -> int:
        if not rows:
            return 0
        cols = ", ".join(COLUMNS)
        try:
            with self._db.cursor() as cur:
                with cur.copy(f"COPY events_in ({cols}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r)
                cur.execute(
                    f"INSERT INTO events ({cols}) SELECT {cols} FROM events_in "  # noqa: S608
                    "ON CONFLICT (event_id) DO NOTHING"
                )
                inserted = max(cur.rowcount, 0)
                cur.execute("DELETE FROM events_in")  # a batch may not be the last in its txn
                return inserted
        except (psycopg.Error, *_DATA_ERRORS) as exc:
            raise store_error(exc) from exc

    def _migrate(self) -> None:
        with self._transaction():
            self._execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            self._execute("CREATE TABLE IF NOT EXISTS facegate_schema (version INTEGER NOT NULL)")
            rows = self._execute("SELECT version FROM facegate_schema").fetchall()
            current = int(rows[0][0]) if rows else 0
            if not rows:
                self._execute("INSERT INTO facegate_schema (version) VALUES (0)")
            for target in sorted(v for v in _MIGRATIONS if v > current):
                for statement in _MIGRATIONS[target]:
                    self._execute(statement)
                self._execute("UPDATE facegate_schema SET version = %s", (target,))

    @property
    def schema_version(self) -> int:
        return int(self._execute("SELECT version FROM facegate_schema").fetchall()[0][0])

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self._db.execute(sql, params)
        except (psycopg.Error, *_DATA_ERRORS) as exc:
            raise store_error(exc) from exc

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        try:
            with self._db.cursor() as cur:
                cur.executemany(sql, rows)
                return max(cur.rowcount, 0)
        except (psycopg.Error, *_DATA_ERRORS) as exc:
            raise store_error(exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            with self._db.transaction():
                yield
        except (psycopg.Error, *_DATA_ERRORS) as exc:
            raise store_error(exc) from exc

    def release_deleted(self) -> None:
        """VACUUM the events table: dead row versions are pruned from their pages now,
        not at autovacuum's leisure. PostgreSQL does not zero the space they leave (no
        secure_delete); docs/erasure.md says what else a deployment needs."""
        try:
            self._db.execute("VACUUM events")
        except (psycopg.Error, *_DATA_ERRORS) as exc:
            raise store_error(exc) from exc

    def close(self) -> None:
        self._db.close()
