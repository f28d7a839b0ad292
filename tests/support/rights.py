"""The rights database on both backends: SQLite in a temp dir, or a fresh database in
the session's private PostgreSQL cluster (``tests/support/store.py::pg_cluster``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def rights_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rights_env(rights_kind: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment that points every process at the same rights database (empty: SQLite
    under each process's own state dir)."""
    if rights_kind == "sqlite":
        return {}
    from tests.support.store import new_pg_database

    return {"FACEGATE_RIGHTS_DSN": new_pg_database(request.getfixturevalue("pg_cluster"))}


@pytest.fixture
def rights_connect(rights_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Opens a new connection to the test's rights database (several = several hosts)."""
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.settings import RightsDbSettings

    opened: list[Any] = []
    dsn = rights_env.get("FACEGATE_RIGHTS_DSN")

    def connect() -> Any:
        db = connect_rights_db(tmp_path / "state", RightsDbSettings(dsn=dsn))
        opened.append(db)
        return db

    yield connect
    for db in opened:
        db.close()


@pytest.fixture
def rights_db(rights_connect: Callable[[], Any]) -> Any:
    """One connection to a fresh rights database, on SQLite and on PostgreSQL."""
    return rights_connect()
