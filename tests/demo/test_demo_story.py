"""``facegate demo`` tells the whole story on private ports and leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FACEGATE, free_ports, make_state_dir, stack_env

pytestmark = pytest.mark.e2e


def processes_using(path: Path) -> list[str]:
    """Command lines of live processes that name ``path`` (brokers, agents, workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmd:
            found.append(f"{proc.name}: {cmd[:200]}")
    return found


def private_env(state: Path, models: Path) -> dict[str, str]:
    """Private ports and state: never the defaults another stack may be using."""
    ports = free_ports(5)
    web = ports[4]
    # Unset: the demo's own default (Kafka auth on) is what is tested.
    inherited = {k: v for k, v in os.environ.items() if k != "FACEGATE_KAFKA_AUTH"}
    return {
        **inherited, **stack_env(state, ports[:4]),
        "FACEGATE_WEB_PORT": str(web), "FACEGATE_WEB_PUBLIC_URL": f"http://127.0.0.1:{web}",
        "FACEGATE_MODELS_DIR": str(models),
    }  # fmt: skip


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path.name}: no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def failure_report(summary: dict[str, Any], out: str) -> str:
    """Why the demo failed, from its own summary: each failed step's lines and facts, the
    tails of the logs it names, the processes that died; then the demo's last output. A CI
    log alone must say what went wrong."""
    parts = []
    for step in summary["steps"]:
        if step["ok"]:
            continue
        parts += [f"=== step {step['key']} FAILED", *step.get("detail", []),
                  f"facts: {json.dumps(step['facts'], default=str)}"]  # fmt: skip
        for log in step.get("logs", []):
            parts += [f"--- tail of {log}", tail(Path(log))]
    logs = Path(summary.get("logs", "."))
    for name in summary.get("died_early", []):
        parts += [f"=== {name} died early; tail of its log", tail(logs / f"{name}.log")]
    return "\n".join([*parts, "=== demo output (end)", out[-3000:]])


@pytest.fixture
def state() -> Iterator[Path]:
    """The demo's private state folder (brokers' data, receipts), removed afterwards: a
    demo's Kafka log dirs alone are hundreds of MiB under /tmp."""
    path = make_state_dir("facegate-demo-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_demo_tells_every_step_and_stops_everything(assets, state: Path) -> None:  # type: ignore[no-untyped-def]
    env = private_env(state, assets.photos.parent)
    run = subprocess.run(
        [FACEGATE, "demo", "--duration", "20", "--pace", "0", "--progress-every", "4"],
        env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    out = run.stdout + run.stderr
    summary = json.loads((state / "demo" / "summary.json").read_text())
    steps = {s["key"]: s for s in summary["steps"]}
    failed = [k for k, s in steps.items() if not s["ok"]]
    assert run.returncode == 0 and summary["ok"] and not failed, failure_report(summary, out)
    assert list(steps) == [
        "recognition", "policy", "withdrawal", "erasure", "keycard", "notice", "console"
    ]  # fmt: skip
    facts = {k: s["facts"] for k, s in steps.items()}
    # The real gates recognised every face resident (the minor too) from varied captures.
    for rid in ("R-101", "R-102", "R-104", "R-105", "R-106"):
        assert facts["recognition"][f"face_match_{rid}"] > 0, rid
    assert facts["recognition"]["unknown_faces_counted"] > 0  # the visitors: counted only
    # The dry run showed what the new policy deletes (the manual openings kept so far).
    assert facts["policy"]["dry_run_would_delete"] > 0
    before, after = facts["withdrawal"]["templates_before"], facts["withdrawal"]["templates_after"]
    assert set(before) == {"lobby", "garage"}
    assert all(after[g] == before[g] - 2 for g in before)  # R-101's two templates, each gate
    assert facts["erasure"]["verified"] and facts["erasure"]["witnessed"]
    assert facts["erasure"]["events_left"] == 0
    assert Path(facts["erasure"]["receipt"]).is_file()
    assert facts["keycard"]["templates_dropped"] and facts["keycard"]["card_opened"]
    assert Path(facts["notice"]["sheet"]).stat().st_size > 0
    assert facts["notice"]["pages"] == [200, 200]
    assert facts["console"]["tokens_work"] == {"viewer": True, "operator": True}
    # What a new user reads: the dashboard URL and both tokens, printed.
    web_url = env["FACEGATE_WEB_PUBLIC_URL"]
    assert f"dashboard: {web_url}/console" in out
    assert "viewer token: fgt_" in out and "operator token: fgt_" in out
    assert "[story 7/7]" in out and "refused:" in out and "stored=" in out
    # Every step above ran on a Kafka with SCRAM logins and the ACL plan (nothing
    # unlisted allowed), the erasure worker's included.
    assert "Kafka auth on" in out
    props = (state / "kafka" / "server.properties").read_text()
    assert "allow.everyone.if.no.acl.found=false" in props and "sasl.enabled" in props
    # Nothing it started is left: neither the children nor the brokers.
    assert summary["pids"] and all(not Path(f"/proc/{pid}").exists() for pid in summary["pids"])
    assert processes_using(state) == []
    assert "nothing left running" in out


def test_ctrl_c_mid_story_stops_everything_it_started(assets, tmp_path, state: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "demo.out"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [FACEGATE, "demo", "--pace", "0"], env=private_env(state, assets.photos.parent),
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while "[story 1/" not in log.read_text() and time.monotonic() < deadline:
            assert demo.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        assert "[story 1/" in log.read_text()
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rc = demo.wait(240)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    text = log.read_text()
    summary = json.loads((state / "demo" / "summary.json").read_text())
    assert summary["interrupted"] and summary["steps"], text[-3000:]
    assert rc == (0 if summary["ok"] else 1) and "Traceback" not in text
    assert all(not Path(f"/proc/{pid}").exists() for pid in summary["pids"])
    assert processes_using(state) == []
    assert "nothing left running" in text


def test_demo_on_a_kafka_formatted_without_auth_says_what_to_do(
    tmp_path: Path, state: Path
) -> None:
    """Auth cannot be turned on in place (no SCRAM users): one Error line, nothing started."""
    (state / "kafka" / "data").mkdir(parents=True)
    (state / "kafka" / "data" / "meta.properties").write_text("version=1\n")
    run = subprocess.run([FACEGATE, "demo", "--duration", "1"], env=private_env(state, tmp_path),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert run.returncode != 0 and len(errors) == 1, run.stdout + run.stderr
    assert "formatted with Kafka auth off" in errors[0] and "make clean" in errors[0]
    assert "FACEGATE_KAFKA_AUTH=false" in errors[0] and "Traceback" not in run.stderr
    assert processes_using(state) == []
