"""SQLite event store: the embedded default (WAL, batched transactions, idempotent)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from stream_processor.errors import StoreError
from stream_processor.store.base import COLUMNS, StoredEvent

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE events (
        event_id       TEXT PRIMARY KEY,
        seq            INTEGER NOT NULL,
        tenant         TEXT NOT NULL,
        site           TEXT NOT NULL,
        gate           TEXT NOT NULL,
        device         TEXT NOT NULL,
        kind           TEXT NOT NULL,
        decision       TEXT NOT NULL,
        purpose        TEXT NOT NULL,
        occurred_at_ms INTEGER NOT NULL,
        subject        TEXT,
        score_band     TEXT,
        model          TEXT,
        consent_ref    TEXT,
        reason         TEXT,
        stored_at_ms   INTEGER NOT NULL,
        expires_at_ms  INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX events_by_site_time ON events (tenant, site, occurred_at_ms);
    CREATE INDEX events_by_subject ON events (subject) WHERE subject IS NOT NULL;
    CREATE INDEX events_by_expiry ON events (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
    """,
}

# Column names come from the StoredEvent dataclass, never from input.
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM events"  # noqa: S608
_INSERT = (
    f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608, E501
)


class SqliteEventStore:
    """One connection per process; several processes may share the file (WAL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for target in sorted(v for v in _MIGRATIONS if v > version):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while we waited for the lock.
                current = self._db.execute("PRAGMA user_version").fetchone()[0]
                if current < target:
                    for statement in _MIGRATIONS[target].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={target}")
                self._db.execute("COMMIT")
            except Exception:
                self._db.execute("ROLLBACK")
                raise

    def put_many(self, rows: Sequence[StoredEvent]) -> int:
        if not rows:
            return 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            self._db.executemany(_INSERT, [tuple(getattr(r, c) for c in COLUMNS) for r in rows])
            inserted = self._db.total_changes - before
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"sqlite insert failed: {exc}") from exc
        return inserted

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def get(self, event_id: str) -> StoredEvent | None:
        row = self._db.execute(f"{_SELECT} WHERE event_id = ?", (event_id,)).fetchone()
        return StoredEvent(*row) if row else None

    def all_events(self) -> list[StoredEvent]:
        rows = self._db.execute(_SELECT).fetchall()
        return [StoredEvent(*r) for r in rows]

    def close(self) -> None:
        self._db.close()
