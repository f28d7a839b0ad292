"""Store fixtures shared by the store, processor and stack tests: both stores (SQLite
and a private PostgreSQL cluster), fresh per test, and stored-event rows."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream_processor.store.base import StoredEvent
from tests.conftest import free_ports, make_state_dir

T0 = 1_700_000_000_000
SUBJ = "ps1_" + "a" * 32
OTHER = "ps1_" + "b" * 32


def row(i: int, **kw: Any) -> StoredEvent:
    base: dict[str, Any] = dict(
        event_id=f"e-{i:06d}", seq=i, tenant="t1", site="s1", gate="g1", device="d1",
        kind="face_match", decision="granted", purpose="access_control",
        occurred_at_ms=T0 + i * 1000, subject=SUBJ, score_band="high", model="m",
        consent_ref=None, reason=None, stored_at_ms=T0, expires_at_ms=T0 + 10**9,
    )  # fmt: skip
    base.update(kw)
    return StoredEvent(**base)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A private PostgreSQL cluster started by the project's own stack code."""
    from stream_processor.stack.postgres import Postgres
    from stream_processor.stack.settings import StackSettings
    from stream_processor.store.settings import StoreSettings

    state = make_state_dir("facegate-pg-")
    (port,) = free_ports(1)
    store_settings = StoreSettings(store="postgres", postgres_port=port)
    pg = Postgres(StackSettings(state_dir=state), store_settings)
    pg.up()
    try:
        yield pg
    finally:
        pg.down()
        shutil.rmtree(state, ignore_errors=True)  # a cluster's files are up to 1 GB


def new_pg_database(pg: Any) -> str:
    """A fresh database in the cluster; returns its DSN."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return str(pg.dsn(name))


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_target(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment that points a worker (or a store factory) at a fresh store."""
    if store_kind == "sqlite":
        return {"FACEGATE_STORE": "sqlite", "FACEGATE_PROCESSOR_STORE_PATH": str(tmp_path / "e.db")}
    pg = request.getfixturevalue("pg_cluster")
    return {"FACEGATE_STORE": "postgres", "FACEGATE_POSTGRES_DSN": new_pg_database(pg)}


def open_store(target: dict[str, str]) -> Any:
    if target["FACEGATE_STORE"] == "sqlite":
        from stream_processor.store.sqlite import SqliteEventStore

        return SqliteEventStore(Path(target["FACEGATE_PROCESSOR_STORE_PATH"]))
    from stream_processor.store.postgres import PostgresEventStore

    return PostgresEventStore(target["FACEGATE_POSTGRES_DSN"])


@pytest.fixture
def store(store_target: dict[str, str]) -> Iterator[Any]:
    s = open_store(store_target)
    try:
        yield s
    finally:
        s.close()
