"""The rights database port on both backends: versioned schema, portable SQL, and the
operations that must be atomic across hosts, raced from two connections."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.progress import ErasureProgress
from stream_processor.rights.keycards import KeycardBook, KeycardError, KeycardStatus
from stream_processor.rights.schema import MIGRATIONS, migrate
from stream_processor.web.tokens import Role, TokenBook, TokenError
from tests.erasure.doubles import request


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for i in 0..n-1 in threads released together; results or errors."""
    start = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the race's loser is part of the result
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_schema_is_versioned_and_a_second_open_applies_nothing(rights_connect: Any) -> None:
    db = rights_connect()
    versions = [r[0] for r in db.execute("SELECT version FROM rights_schema ORDER BY 1").fetchall()]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert migrate(rights_connect()) == len(MIGRATIONS)
    again = db.execute("SELECT COUNT(*) FROM rights_schema").fetchone()[0]
    assert again == len(MIGRATIONS)


def test_millisecond_timestamps_beyond_32_bits_round_trip(rights_db: Any) -> None:
    far = 2**53 - 1  # the wire's bound; PostgreSQL's INTEGER would overflow at 2**31
    rights_db.execute(
        "INSERT INTO compliance_milestones (tenant, what, reached_at_ms) VALUES (?, ?, ?)",
        ("acme", "far", far),
    )
    row = rights_db.execute("SELECT reached_at_ms FROM compliance_milestones").fetchone()
    assert row[0] == far


def test_two_hosts_adding_devices_to_one_erasure_lose_none(rights_connect: Any) -> None:
    """The book's read-modify-write, from several connections at once, many times."""
    hosts = [ErasureBook(rights_connect()) for _ in range(4)]
    req = request()
    hosts[0].add(ErasureProgress.start(req, "0190f0a0-0000-7000-8000-000000000001", []), 1)

    def add(i: int) -> None:
        for k in range(10):
            change = lambda p, g=f"g{i}", d=f"d{k}": p.with_devices([(g, d)])  # noqa: E731
            hosts[i].update(req.request_id, change, 2)

    assert race(4, add) == [None] * 4
    final = hosts[1].get(req.request_id)
    assert final is not None and len(final.expected) == 40


def test_threads_sharing_one_connection_lose_no_update(rights_db: Any) -> None:
    """The web app's handlers and its metrics scrape share a connection: a transaction
    keeps the other threads' statements out of it."""
    book = ErasureBook(rights_db)
    req = request()
    book.add(ErasureProgress.start(req, "0190f0a0-0000-7000-8000-000000000002", []), 1)

    def add(i: int) -> None:
        for k in range(10):
            change = lambda p, g=f"g{i}", d=f"d{k}": p.with_devices([(g, d)])  # noqa: E731
            book.update(req.request_id, change, 2)

    assert race(4, add) == [None] * 4
    final = book.get(req.request_id)
    assert final is not None and len(final.expected) == 40


def test_two_hosts_revoking_one_token_exactly_one_wins(rights_connect: Any) -> None:
    books = [TokenBook(rights_connect()), TokenBook(rights_connect())]
    _secret, token = books[0].create("acme", Role.OPERATOR, "desk")
    results = race(2, lambda i: books[i].revoke(token.id))
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, TokenError)]
    assert len(won) == 1 and len(lost) == 1 and "already revoked" in str(lost[0])
    assert books[1].list("acme")[0].revoked_at_ms is not None


def test_two_hosts_fulfilling_one_key_card_exactly_one_wins(rights_connect: Any) -> None:
    books = [KeycardBook(rights_connect()), KeycardBook(rights_connect())]
    req = books[0].request("acme", "north", channel="office", unit="4b")
    results = race(2, lambda i: books[i].fulfil(req.id, f"card-{i}"))
    won = [r for r in results if not isinstance(r, Exception)]
    assert len(won) == 1 and isinstance(results[1 - results.index(won[0])], KeycardError)
    final = books[1].get(req.id)
    assert final.status is KeycardStatus.FULFILLED and final.card_ref == won[0].card_ref


def test_a_receipt_issued_twice_is_one_row_and_the_unwitnessed_query_runs(
    rights_connect: Any,
) -> None:
    from stream_processor.rights.receipt_store import ReceiptStore

    db = rights_connect()
    store = ReceiptStore(db)
    assert store.unwitnessed() == []  # the dialect's JSON test parses on this backend
    db.execute(
        "INSERT INTO erasure_receipts (request_id, subject, issued_at_ms, receipt) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET receipt = excluded.receipt",
        ("r1", "ps1_x", 1, '{"witnessed": null}'),
    )
    db.execute(
        "INSERT INTO erasure_receipts (request_id, subject, issued_at_ms, receipt) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET receipt = excluded.receipt",
        ("r1", "ps1_x", 1, '{"witnessed": {"n": 1}}'),
    )
    rows = rights_connect().execute("SELECT receipt FROM erasure_receipts").fetchall()
    assert rows == [('{"witnessed": {"n": 1}}',)]


def test_placeholders_become_psycopg_ones_and_a_literal_percent_survives() -> None:
    from stream_processor.rights.db_pg import to_pyformat

    assert to_pyformat("SELECT ? WHERE a LIKE '5%' AND b = ?") == (
        "SELECT %s WHERE a LIKE '5%%' AND b = %s"
    )


def test_an_unreachable_rights_database_is_one_clear_error(tmp_path: Any) -> None:
    from stream_processor.errors import FacegateError
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.settings import RightsDbSettings
    from tests.conftest import free_ports

    (port,) = free_ports(1)
    dsn = f"postgresql://facegate:secret-pw@127.0.0.1:{port}/rights"
    with pytest.raises(FacegateError) as err:
        connect_rights_db(tmp_path, RightsDbSettings(dsn=dsn, connect_timeout_s=2))
    assert "cannot connect to the rights database" in str(err.value)
    assert "secret-pw" not in str(err.value)


def test_the_processes_role_needs_only_dml_grants_once_the_owner_migrated(
    pg_cluster: Any, tmp_path: Any
) -> None:
    """The grants docs/operations.md gives the processes' role are enough to run."""
    import uuid

    import psycopg
    from psycopg.conninfo import make_conninfo

    from edge_agent.wire.topics import DeviceIdentity
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.settings import RightsDbSettings
    from stream_processor.runtime.registry import DeviceRegistry
    from tests.support.store import new_pg_database

    owner_dsn = new_pg_database(pg_cluster)
    connect_rights_db(tmp_path, RightsDbSettings(dsn=owner_dsn)).close()  # owner migrates
    role = f"rights_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(owner_dsn, autocommit=True) as c:
        c.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'app-pw'")
        c.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        c.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        c.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    app_dsn = make_conninfo(owner_dsn, user=role, password="app-pw")
    db = connect_rights_db(tmp_path, RightsDbSettings(dsn=app_dsn))
    try:
        gate = DeviceIdentity("acme", "north", "g1", "d1")
        assert DeviceRegistry(db).register(gate, "os:ops") is True
        assert TokenBook(db).create("acme", Role.VIEWER, "wall")[1].tenant == "acme"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("DROP TABLE device_registry")
    finally:
        db.close()


def test_a_server_lost_mid_use_is_the_same_clear_error(pg_cluster: Any, tmp_path: Any) -> None:
    import psycopg

    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.db_pg import RightsDbUnavailable
    from stream_processor.rights.settings import RightsDbSettings
    from tests.support.store import new_pg_database

    dsn = new_pg_database(pg_cluster)
    db = connect_rights_db(tmp_path, RightsDbSettings(dsn=dsn))
    try:
        (pid,) = db.execute("SELECT pg_backend_pid()").fetchone()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(RightsDbUnavailable, match="cannot connect to the rights database"):
            TokenBook(db).list()
    finally:
        db.close()
