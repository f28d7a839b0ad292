"""``facegate web serve`` the way an operator starts it: a real process on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FACEGATE, free_ports, wait_for
from tests.support.web import EXAMPLE_CAMERAS, POLICY, stop_web

pytestmark = pytest.mark.e2e


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - local test server
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_serve_notice_page_follows_the_policy_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "config" / "policies").mkdir(parents=True)
    shutil.copy(EXAMPLE_CAMERAS, state / "config" / "cameras.yaml")
    policy = state / "config" / "policies" / "acme.yaml"
    from stream_processor.runtime.kafka_auth import ensure_passwords

    ensure_passwords(state)  # the logins a 'stack up' makes (Kafka auth is on by default)
    policy.write_text(POLICY.format(tenant="acme", face="30d"))
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "FACEGATE_STATE_DIR": str(state),
        "FACEGATE_WEB_PORT": str(port),
        "FACEGATE_WEB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FACEGATE_WEB_RETENTION_SOURCE": "file",
    }
    log_path = tmp_path / "web.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen([FACEGATE, "web", "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: fetch(base + "/healthz")[0] == 200, 60, "web app health")
        status, page = fetch(base + "/notice/acme/north-garden/gate-east-1?lang=en")
        assert status == 200
        assert '<td class="retention">30 days</td>' in page
        policy.write_text(POLICY.format(tenant="acme", face="14d"))
        _, page = fetch(base + "/notice/acme/north-garden/gate-east-1?lang=en")
        assert '<td class="retention">14 days</td>' in page
        assert "Notice version 2" in page
        made = subprocess.run(
            [FACEGATE, "web", "token", "create", "--tenant", "acme", "--role", "operator",
             "--label", "e2e test"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        assert token.startswith("fgt_") and token not in made.stderr
        assert fetch(base + "/console")[0] == 401
        status, page = fetch(base + "/console/sign-in")
        assert status == 200 and 'name="token"' in page
        assert fetch(base + "/api/v1/keycards")[0] == 401
        status, body = fetch(base + "/api/v1/keycards", {"Authorization": f"Bearer {token}"})
        assert status == 200 and '"requests": []' in body

        # The published audit files: download them and verify as an outsider would.
        done = subprocess.run(
            [FACEGATE, "audit", "checkpoint", "--no-publish"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        outside = tmp_path / "downloaded"
        outside.mkdir()
        for name in ("log.jsonl", "checkpoints.jsonl", "operator-public.pem"):
            status, text = fetch(f"{base}/audit/{name}")
            assert status == 200, name
            (outside / name).write_text(text)
        assert fetch(base + "/audit/secrets")[0] == 404
        verified = subprocess.run(
            [
                FACEGATE,
                "audit",
                "verify",
                "--log",
                str(outside / "log.jsonl"),
                "--checkpoints",
                str(outside / "checkpoints.jsonl"),
                "--public-key",
                str(outside / "operator-public.pem"),
            ],
            env={**os.environ, "FACEGATE_STATE_DIR": str(tmp_path / "nobody")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verified.returncode == 0, verified.stdout
        assert "audit log OK: 2 entries, 1 checkpoints" in verified.stdout
    finally:
        try:
            stop_web(proc, log_path)
        finally:
            log.close()
    audit_log = (state / "audit" / "log.jsonl").read_text()
    assert audit_log.count('"type":"notice_version"') == 2
