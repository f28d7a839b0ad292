"""Opening the rights database: SQLite in the state dir, or the shared PostgreSQL.

Tables (``rights/schema.py``): key-card requests, erasure progress and receipts,
device waivers, the device registry, camera notice versions, web tokens and sessions,
compliance milestones. Whoever opens a database first brings its schema up to date.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from stream_processor.rights.db_port import Dialect, RightsCursor, RightsDb
from stream_processor.rights.schema import migrate
from stream_processor.rights.settings import RightsDbSettings
from stream_processor.runtime.layout import private_database


class SqliteRightsDb:
    """The single-host rights database: one SQLite file (WAL) shared by local processes."""

    def __init__(self, path: Path) -> None:
        private_database(path)
        self.path = path
        # One connection serves several threads (the web app's handlers and its metrics
        # scrape): a transaction holds it, so no other thread's statement lands inside.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        # What an erasure clears here (a key-card request's subject, contact details
        # scrubbed after closing) is zeroed in the page, not left in free space.
        self._db.execute("PRAGMA secure_delete=ON")

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    def execute(self, sql: str, params: Sequence[object] = (), /) -> RightsCursor:
        with self._lock:
            return self._db.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock at BEGIN: a read inside sees the latest state,
        # and no other process can change it before COMMIT.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def rights_db_path(state_dir: Path) -> Path:
    return state_dir / "rights" / "rights.sqlite"


def open_rights_db(path: Path) -> SqliteRightsDb:
    """Open (and create, 0600) a SQLite rights database at ``path``, schema up to date."""
    db = SqliteRightsDb(path)
    migrate(db)
    return db


def connect_rights_db(
    state_dir: Path, settings: RightsDbSettings | None = None, *, sqlite_path: Path | None = None
) -> RightsDb:
    """The deployment's rights database: ``sqlite_path`` if given (an explicit file such
    as ``FACEGATE_ERASURE_DB_PATH``), else PostgreSQL if ``FACEGATE_RIGHTS_DSN`` is set,
    else SQLite under ``state_dir``."""
    if sqlite_path is not None:
        return open_rights_db(sqlite_path)
    settings = settings or RightsDbSettings()
    if settings.dsn is None:
        return open_rights_db(rights_db_path(state_dir))
    from stream_processor.rights.db_pg import PostgresRightsDb

    db = PostgresRightsDb(settings.dsn.get_secret_value(), settings.connect_timeout_s)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


__all__ = ["SqliteRightsDb", "connect_rights_db", "open_rights_db", "rights_db_path"]
