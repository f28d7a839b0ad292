"""The rights database as a port: what the rights, erasure and web code asks of it.

Two implementations: SQLite in the state directory (``rights/db.py``, one host) and
PostgreSQL shared by every host of a deployment (``rights/db_pg.py``). Call sites write
one SQL text for both: ``?`` placeholders, ``ON CONFLICT`` upserts, no dialect
functions except where ``dialect`` is consulted.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgres"]


class RightsCursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class RightsDb(Protocol):
    """A connection in autocommit mode; ``transaction`` groups statements."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, params: Sequence[object] = (), /) -> RightsCursor: ...

    def transaction(self) -> AbstractContextManager[None]:
        """All-or-nothing, and exclusive against every other writer of the database (on
        every host): a read inside it sees what no one else can change before it ends."""
        ...

    def close(self) -> None: ...


__all__ = ["Dialect", "RightsCursor", "RightsDb"]
