"""Commands as a newcomer meets them with nothing running: headers, empty states said
in words, the subject named one way everywhere."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from edge_agent.pseudonym import SiteSecret
from tests.cli.conftest import Case, Workspace, assert_one_error_line, run

pytestmark = pytest.mark.e2e


def test_devices_list_has_a_header_and_json(workspace: Workspace, running_stack: Any) -> None:
    empty = run(workspace, Case("list", ("devices", "list"), ""))
    assert (empty.code, empty.stdout.strip()) == (0, "no devices registered")
    # Registering opens the device's MQTT session, so it needs the real broker.
    live = Workspace(workspace.root, {**workspace.env, **running_stack.env})
    tenant = f"cli{uuid.uuid4().hex[:8]}"
    username = f"{tenant}.s1.g1.d1"
    added = run(live, Case("add", ("devices", "add", "--tenant", tenant, "--site", "s1",
                                   "--gate", "g1", "--device", "d1", "--plain"), ""))
    assert added.code == 0, added.stderr
    listed = run(live, Case("list", ("devices", "list"), "")).stdout.splitlines()
    assert listed[0] == "tenant\tsite\tgate\tdevice\tusername"
    assert f"{tenant}\ts1\tg1\td1\t{username}" in listed[1:]
    rows = run(live, Case("json", ("devices", "list", "--json"), "")).stdout.splitlines()
    assert username in [json.loads(r)["username"] for r in rows]
    removed = run(live, Case("remove", ("devices", "remove", "--tenant", tenant, "--site", "s1",
                                        "--gate", "g1", "--device", "d1"), ""))
    assert removed.code == 0, removed.stderr


def test_erasure_status_says_when_nothing_is_pending(workspace: Workspace) -> None:
    out = run(workspace, Case("status", ("erasure", "status"), ""))
    assert (out.code, out.stdout.strip()) == (0, "no erasure requests: nothing pending")
    as_json = run(workspace, Case("status", ("erasure", "status", "--json"), ""))
    assert json.loads(as_json.stdout) == []


@pytest.mark.parametrize(
    "argv,expect",
    [
        (("consent", "show", "--tenant", "acme", "--site", "s1", "--resident-id", "R-1"),
         "--resident-id needs --site-secret"),
        (("consent", "grant", "--tenant", "acme", "--site", "s1", "--purpose", "access_control",
          "--consent-ref", "F-1"), "name the subject"),
        (("erasure", "request", "--tenant", "acme", "--site", "s1", "--subject",
          "ps1_" + "ab" * 16, "--resident-id", "R-1", "--site-secret", "{ws}/secret"),
         "not both"),
        (("consent", "withdraw", "--tenant", "", "--site", "s1", "--subject", "ps1_x"),
         "--tenant"),
        (("consent", "grant", "--tenant", "acme", "--site", "s1", "--subject", "ps1_x",
          "--purpose", "access_control", "--evidence", "F-1"), "No such option: --evidence"),
    ],
    ids=["resident-id-without-secret", "no-subject", "both-subjects", "empty-tenant",
         "retired-evidence"],
)  # fmt: skip
def test_the_subject_is_named_one_way(
    workspace: Workspace, argv: tuple[str, ...], expect: str
) -> None:
    (workspace.root / "secret").write_text(SiteSecret("acme", "s1", b"s" * 32).text())
    case = Case("subject", argv, expect, usage=True, code=2)
    assert_one_error_line(case, run(workspace, case))


def test_consent_with_resident_id_reaches_kafka_as_its_pseudonym(workspace: Workspace) -> None:
    """--resident-id with --site-secret is accepted and only then needs the broker."""
    (workspace.root / "secret").write_text(SiteSecret("acme", "s1", b"s" * 32).text())
    case = Case("show", ("consent", "show", "--tenant", "acme", "--site", "s1", "--resident-id",
                         "R-1", "--site-secret", "{ws}/secret"),
                "is the stack up?", code=69)  # fmt: skip
    assert_one_error_line(case, run(workspace, case))
