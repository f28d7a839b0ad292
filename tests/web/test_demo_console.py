"""``facegate demo`` the way a new user runs it: it prints a dashboard URL and a viewer
token of the demo firm, and both work while the demo runs (own stack, free ports)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FACEGATE, free_ports, make_state_dir, stack_env

pytestmark = pytest.mark.e2e


def _get(url: str, token: str) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - the demo's local app
            return resp.status, json.loads(resp.read())
    except OSError:
        return 0, {}


def test_demo_prints_a_working_dashboard_url_and_viewer_token(tmp_path: Path) -> None:
    state = make_state_dir("facegate-demo-console-")
    (port,) = free_ports(1)
    env = {
        **os.environ,
        **stack_env(state, free_ports(4)),
        "FACEGATE_WEB_PORT": str(port),
        "FACEGATE_WEB_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    proc = subprocess.Popen(
        [FACEGATE, "demo", "--duration", "20", "--sites", "1", "--gates", "1", "--rate", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    url = token = None
    lines = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and token is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "[demo] dashboard: " in line:
                url = line.split("[demo] dashboard: ", 1)[1].split()[0]
            if "viewer token of the demo firm: " in line:
                token = line.rsplit(": ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}/console", "".join(lines)
        assert token is not None and token.startswith("fgt_"), "".join(lines)
        status, me = 0, {}
        deadline = time.monotonic() + 60
        while status != 200 and time.monotonic() < deadline:
            status, me = _get(f"http://127.0.0.1:{port}/api/v1/me", token)
            time.sleep(0.5)
        assert status == 200 and me["tenant"] == "demo" and me["role"] == "viewer"
        out, _ = proc.communicate(timeout=240)
        lines.append(out)
        assert proc.returncode == 0, "".join(lines)
        assert "nothing left running" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
