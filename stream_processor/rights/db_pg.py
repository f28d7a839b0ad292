"""The rights database on PostgreSQL (psycopg 3), shared by every host of a deployment.

Call sites write SQLite-style SQL (``?`` placeholders); this adapter turns it into
psycopg's. ``transaction`` holds one transaction-scoped advisory lock, the same for
every connection: like SQLite's ``BEGIN IMMEDIATE``, one writer at a time across all
hosts, so a read-modify-write (an erasure acknowledgement, a notice version) never
loses to a concurrent one. Single-statement compare-and-set updates (``... WHERE
status = 'open'``) need no lock: PostgreSQL re-checks the condition after waiting for
a row another transaction holds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from stream_processor.errors import FacegateError
from stream_processor.rights.db_port import Dialect, RightsCursor

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "a PostgreSQL rights database needs psycopg; run: pip install 'facegate[cloud]'",
        name="psycopg",
    ) from exc

#: The advisory lock key of every rights transaction (an arbitrary constant, "rights").
WRITE_LOCK = 0x7269676874730001


class RightsDbUnavailable(FacegateError):
    """The shared rights database cannot be reached or refused an operation."""

    retriable = True


def to_pyformat(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (a literal ``%`` doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _param(value: object) -> object:
    # Flags are INTEGER columns in both dialects; psycopg would send a bool as boolean.
    return int(value) if isinstance(value, bool) else value


def _unavailable(exc: psycopg.Error) -> RightsDbUnavailable:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RightsDbUnavailable(f"cannot connect to the rights database: {first}")


class PostgresRightsDb:
    def __init__(self, dsn: str, connect_timeout_s: float = 10.0) -> None:
        # Shared by threads: a transaction holds the connection (see ``SqliteRightsDb``);
        # results are fetched client-side at execute, so a cursor outlives the lock.
        self._lock = threading.RLock()
        try:
            self._db = psycopg.connect(
                dsn, autocommit=True, connect_timeout=max(1, int(connect_timeout_s))
            )
        except psycopg.Error as exc:
            raise _unavailable(exc) from exc

    @property
    def dialect(self) -> Dialect:
        return "postgres"

    def execute(self, sql: str, params: Sequence[object] = (), /) -> RightsCursor:
        with self._lock:
            try:
                cur: psycopg.Cursor[Any] = self._db.execute(
                    to_pyformat(sql),  # type: ignore[arg-type,unused-ignore]  # constant SQL
                    [_param(p) for p in params],
                )
            except psycopg.OperationalError as exc:  # the server went away, not the SQL
                raise _unavailable(exc) from exc
        return cur

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield

    def close(self) -> None:
        self._db.close()


__all__ = ["PostgresRightsDb", "RightsDbUnavailable", "WRITE_LOCK", "to_pyformat"]
