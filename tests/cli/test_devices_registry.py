"""``facegate devices`` over the shared registry: a host with an empty state dir lists
the gates another host registered (PostgreSQL), and an unreachable rights database is
one ``Error:`` line naming it, never a traceback or the DSN's password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.rights.db import connect_rights_db
from stream_processor.rights.settings import RightsDbSettings
from stream_processor.runtime.registry import DeviceRegistry
from tests.cli.conftest import Case, Workspace, assert_one_error_line, run
from tests.conftest import free_ports
from tests.support.store import new_pg_database


def test_list_on_an_empty_host_shows_what_another_host_registered(
    workspace: Workspace, pg_cluster: Any, tmp_path: Path
) -> None:
    dsn = new_pg_database(pg_cluster)
    db = connect_rights_db(tmp_path / "host-a", RightsDbSettings(dsn=dsn))
    try:
        registry = DeviceRegistry(db)
        registry.register(DeviceIdentity("acme", "north", "g1", "d1"), "os:ops")
        registry.register(DeviceIdentity("acme", "north", "g2", "d2"), "os:ops")
        registry.remove(DeviceIdentity("acme", "north", "g2", "d2"), "os:ops")
    finally:
        db.close()
    out = run(workspace, Case("list", ("devices", "list"), "", env={"FACEGATE_RIGHTS_DSN": dsn}))
    assert out.code == 0, out.stderr
    assert out.stdout.splitlines()[1:] == ["acme\tnorth\tg1\td1\tacme.north.g1.d1"]


def test_an_unreachable_rights_database_is_one_error_line(workspace: Workspace) -> None:
    (port,) = free_ports(1)
    dsn = f"postgresql://facegate:hunter2-secret@127.0.0.1:{port}/rights?connect_timeout=2"
    case = Case(
        "down", ("devices", "list"), "cannot connect to the rights database",
        env={"FACEGATE_RIGHTS_DSN": dsn},
    )  # fmt: skip
    out = run(workspace, case)
    assert_one_error_line(case, out)
    assert "hunter2-secret" not in out.stderr + out.stdout


def test_a_token_made_on_one_host_signs_in_on_another_and_a_revoke_reaches_both(
    workspace: Workspace, pg_cluster: Any, tmp_path: Path
) -> None:
    """Office commands on the shared rights DB: no host-local token file."""
    from stream_processor.web.tokens import TokenBook

    env = {"FACEGATE_RIGHTS_DSN": new_pg_database(pg_cluster)}
    argv = ("web", "token", "create", "--tenant", "acme", "--role", "viewer", "--label", "wall")
    made = run(workspace, Case("create", argv, "", env=env))
    assert made.code == 0, made.stderr
    secret = made.stdout.strip()
    dsn = env["FACEGATE_RIGHTS_DSN"]
    other_host = connect_rights_db(tmp_path / "host-b", RightsDbSettings(dsn=dsn))
    try:
        token = TokenBook(other_host).authenticate(secret)
        assert token is not None and token.tenant == "acme"
        revoked = run(workspace, Case("revoke", ("web", "token", "revoke", token.id), "", env=env))
        assert revoked.code == 0, revoked.stderr
        assert TokenBook(other_host).authenticate(secret) is None
    finally:
        other_host.close()
