"""The commands and the web app work against a stack with Kafka authentication on, each
logged in as its own role; missing or wrong credentials are one ``Error:`` line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from edge_agent.pseudonym import load_site_secret, new_site_secret, pseudonym
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth, users_path
from stream_processor.runtime.ledger_client import read_ledger, write_records
from stream_processor.runtime.settings import BrokerSettings, Topics
from tests.conftest import FACEGATE, free_ports
from tests.stack.conftest import run_cli, secured_env
from tests.support.web import EXAMPLE_CAMERAS, policy_version

pytestmark = pytest.mark.component
T = Topics()
SOMEONE = pseudonym(new_site_secret("a", "s"), "R-0")


def _ok(env: dict[str, str], *args: str) -> str:
    done = run_cli(env, *args, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert line.startswith("Error:")
    return line


def test_status_reads_kafka_as_the_status_principal(secured: BrokerSettings) -> None:
    done = run_cli(secured_env(secured), "status", "--json", timeout=120)
    report = json.loads(done.stdout)
    kafka = {p["name"]: p for p in report["parts"]}["kafka"]
    assert kafka["up"] is True, done.stdout + done.stderr
    # Workers do not run here: their groups are looked at (described), not refused.
    assert "uthoriz" not in done.stdout + done.stderr


def test_office_commands_write_and_read_the_ledgers_as_the_office(
    secured: BrokerSettings, tmp_path: Path
) -> None:
    env = secured_env(secured)
    secret_file = tmp_path / "site.secret"
    _ok(env, "site", "secret", "create", "--tenant", "authco", "--site", "s1",
        "--out", str(secret_file))  # fmt: skip
    subject = pseudonym(load_site_secret(secret_file), "R-7")
    place = ("--tenant", "authco", "--site", "s1")
    request_id = _ok(env, "erasure", "request", *place, "--subject", subject).split()[0]
    admin = kafka_python_auth(secured, Role.ADMIN)
    assert request_id.encode() in read_ledger(secured.kafka_bootstrap, T.erasure, auth=admin)

    export = json.loads(_ok(env, "subject", "export", *place, "--subject", subject,
                            "--no-store", "--ledger"))  # fmt: skip
    assert export["subject"] == subject

    made = _ok(env, "keycard", "request", *place, "--resident-id", "R-7",
               "--site-secret", str(secret_file), "--unit", "1-101")  # fmt: skip
    done = _ok(env, "keycard", "fulfil", made.split()[2], "--card", "CARD7",
               "--site-secret", str(secret_file))  # fmt: skip
    assert "face consent withdrawn; card registered" in done


def test_office_check_reads_consent_as_the_office(  # type: ignore[no-untyped-def]
    secured: BrokerSettings, assets, tmp_path: Path
) -> None:
    from edge_agent.pseudonym import write_site_secret
    from tests.support.edge import write_config

    office = tmp_path / "office"
    office.mkdir()
    write_site_secret(new_site_secret("authco", "s2"), office / "site.secret")
    config = str(write_config(office, assets, office / "device.json"))
    _ok(secured_env(secured), "office", "check", "--config", config)


def _fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local test server
            return str(resp.read().decode())
    except OSError:
        return ""


def test_the_web_app_follows_the_policies_as_the_web_principal(
    secured: BrokerSettings, tmp_path: Path
) -> None:
    office = kafka_python_auth(secured, Role.OFFICE)
    from stream_processor.policy.keys import history_key, policy_key

    v = policy_version("30d", 1)
    write_records(secured.kafka_bootstrap, T.policies,
                  [(history_key("acme", 1), v), (policy_key("acme"), v)], auth=office)  # fmt: skip
    config = secured.state_dir / "config"
    config.mkdir(exist_ok=True)
    shutil.copy(EXAMPLE_CAMERAS, config / "cameras.yaml")
    (port,) = free_ports(1)
    env = {**os.environ, **secured_env(secured), "FACEGATE_WEB_PORT": str(port),
           "FACEGATE_WEB_RETENTION_SOURCE": "kafka"}  # fmt: skip
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([FACEGATE, "web", "serve"], env=env, stdout=log, stderr=log)
        page = f"http://127.0.0.1:{port}/notice/acme/north-garden/gate-main-1?lang=en"
        try:
            deadline = time.monotonic() + 60
            while "30 days" not in _fetch(page) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert "30 days" in _fetch(page), log_path.read_text()[-3000:]
        finally:
            proc.terminate()
            proc.wait(30)
    assert "uthoriz" not in log_path.read_text()


def test_missing_credentials_are_one_error_line(secured: BrokerSettings, tmp_path: Path) -> None:
    env = {**secured_env(secured), "FACEGATE_STATE_DIR": str(tmp_path)}
    line = _one_error_line(run_cli(env, "erasure", "request", "--tenant", "a", "--site", "s",
                                   "--subject", SOMEONE, timeout=120))  # fmt: skip
    assert "facegate stack up" in line
    assert _one_error_line(run_cli(env, "status", timeout=120))


def test_a_wrong_password_is_one_error_line(secured: BrokerSettings, tmp_path: Path) -> None:
    users = json.loads(users_path(secured.state_dir).read_text())
    forged = users_path(tmp_path)
    forged.parent.mkdir(parents=True)
    forged.write_text(json.dumps({role: "wrong" + p[5:] for role, p in users.items()}))
    forged.chmod(0o600)
    env = {**secured_env(secured), "FACEGATE_STATE_DIR": str(tmp_path)}
    done = run_cli(env, "consent", "show", "--tenant", "a", "--site", "s",
                   "--subject", SOMEONE, timeout=120)  # fmt: skip
    _one_error_line(done)


def test_stack_up_again_keeps_the_logins_and_rotates_a_dropped_one(
    secured_stack: tuple[BrokerSettings, dict[str, str]],
) -> None:
    from stream_processor.errors import BrokerError
    from stream_processor.runtime.kafka_auth import check_login

    secured, env = secured_stack
    path = users_path(secured.state_dir)
    before = json.loads(path.read_text())
    old_status = kafka_python_auth(secured, Role.STATUS)
    # Rotation: the role's entry removed, 'stack up' makes and sets a new password.
    path.write_text(json.dumps({r: p for r, p in before.items() if r != Role.STATUS.value}))
    _ok(env, "stack", "up")
    after = json.loads(path.read_text())
    assert after[Role.STATUS.value] != before[Role.STATUS.value]
    assert {r: p for r, p in after.items() if r != "status"} == {
        r: p for r, p in before.items() if r != "status"
    }
    check_login(secured.kafka_bootstrap, kafka_python_auth(secured, Role.STATUS))
    with pytest.raises(BrokerError, match="did not accept the login of facegate-status"):
        check_login(secured.kafka_bootstrap, old_status, timeout_s=5)
    # The other roles still log in: the start upserted them unchanged.
    assert _ok(env, "erasure", "request", "--tenant", "a", "--site", "s", "--subject", SOMEONE)
