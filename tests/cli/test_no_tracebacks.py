"""Each user mistake and outage that used to end in a traceback is one ``Error:``
line and a non-zero exit; each value that used to be accepted wrongly is refused.

Each case runs the installed ``facegate`` in a subprocess, as a user does. Brokers
are pointed at a closed port: "no broker" costs a refused connection, not a stack.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import time

import pytest

from edge_agent.pseudonym import SiteSecret
from tests.cli.conftest import (
    Case,
    Outcome,
    Workspace,
    assert_one_error_line,
    run,
    run_all,
)
from tests.conftest import FACEGATE, REPO, free_ports

pytestmark = pytest.mark.e2e

SUBJECT = "ps1_" + "ab" * 16
NO_BROKER = "is the stack up? (facegate stack up)"
UNAVAILABLE = 69
STACK_ENV = {
    "FACEGATE_KAFKA_HEAP": "-Xmx1k",  # the JVM refuses to start: a real StackError, fast
    "FACEGATE_MQTT_PORT": "{stack_mqtt}",
    "FACEGATE_KAFKA_PORT": "{stack_kafka}",
    "FACEGATE_KAFKA_CONTROLLER_PORT": "{stack_ctl}",
    "FACEGATE_STATE_DIR": "{ws}/stack-state",
}
TOMORROW = (dt.date.today() + dt.timedelta(days=1)).isoformat()

KAFKA_DOWN = [
    Case("consent-grant", ("consent", "grant", "--tenant", "acme", "--site", "north-garden",
         "--subject", SUBJECT, "--purpose", "access_control", "--consent-ref", "F-1"),
         NO_BROKER, code=UNAVAILABLE),
    Case("consent-withdraw", ("consent", "withdraw", "--tenant", "acme", "--site",
         "north-garden", "--subject", SUBJECT), NO_BROKER, code=UNAVAILABLE),
    Case("consent-show", ("consent", "show", "--tenant", "acme", "--site", "north-garden",
         "--subject", SUBJECT), NO_BROKER, code=UNAVAILABLE),
    Case("consent-forget", ("consent", "forget", "--tenant", "acme", "--site", "north-garden",
         "--subject", SUBJECT), NO_BROKER, code=UNAVAILABLE),
    Case("policy-show", ("policy", "show", "--tenant", "acme"), NO_BROKER, code=UNAVAILABLE),
    Case("policy-history", ("policy", "history", "--tenant", "acme"), NO_BROKER,
         code=UNAVAILABLE),
    Case("policy-apply", ("policy", "apply", "{ws}/policy.yaml"), NO_BROKER, code=UNAVAILABLE),
    Case("erasure-request", ("erasure", "request", "--tenant", "acme", "--site",
         "north-garden", "--subject", SUBJECT), NO_BROKER, code=UNAVAILABLE),
    Case("audit-checkpoint-publish", ("audit", "checkpoint", "--publish", "--force"), NO_BROKER,
         code=UNAVAILABLE),
    Case("audit-verify-kafka", ("audit", "verify", "--log", "{ws}/empty.jsonl", "--public-key",
         "{ws}/pub.pem", "--checkpoints-from-kafka"), NO_BROKER, code=UNAVAILABLE),
    Case("audit-follow", ("audit", "follow"), NO_BROKER, code=UNAVAILABLE),
    Case("processor-worker", ("processor", "worker"), NO_BROKER, code=UNAVAILABLE),
    Case("erasure-worker", ("erasure", "worker"), NO_BROKER, code=UNAVAILABLE),
    Case("subject-export", ("subject", "export", "--tenant", "acme", "--site", "north-garden",
         "--subject", SUBJECT), "--no-ledger", code=UNAVAILABLE),
    Case("audit-checkpointer", ("audit", "checkpointer", "--interval", "1"), NO_BROKER,
         code=UNAVAILABLE),
]

TRACEBACKS = [
    Case("notice-validate-bad-policy-yaml", ("notice", "validate-config", "--cameras",
         "{ws}/cameras.yaml", "--policy", "{ws}/bad.yaml"), "bad.yaml"),
    Case("notice-sheet-bad-yaml", ("notice", "sheet", "--site", "north-garden", "--cameras",
         "{ws}/bad.yaml", "--out", "{ws}/sheet.pdf"), "bad.yaml"),
    Case("notice-sheet-txt", ("notice", "sheet", "--site", "north-garden", "--cameras",
         "{ws}/cameras.yaml", "--out", "{ws}/x.txt"), ".png or .pdf"),
    Case("notice-sheet-bad-font", ("notice", "sheet", "--site", "north-garden", "--cameras",
         "{ws}/cameras.yaml", "--out", "{ws}/sheet.pdf", "--font", "{ws}/font.ttf"), "font.ttf"),
    Case("audit-verify-log-directory", ("audit", "verify", "--log", "{ws}/logdir",
         "--public-key", "{ws}/pub.pem"), "logdir"),
    Case("audit-print-receipt-garbage", ("audit", "print-receipt", "{ws}/garbage.json",
         "--out", "{ws}/r.pdf"), "garbage.json"),
    Case("verifier-no-arguments", ("{repo}/docs/verifier/verify_audit.py",), "usage",
         python=True, code=2),
    Case("env-kafka-port-negative", ("consent", "show", "--tenant", "acme", "--site", "s",
         "--subject", SUBJECT), "FACEGATE_KAFKA_PORT", env={"FACEGATE_KAFKA_PORT": "-1"}),
    Case("env-store-mysql", ("processor", "worker"), "FACEGATE_STORE",
         env={"FACEGATE_STORE": "mysql"}),
    Case("edge-simulate-missing-device-file", ("edge", "simulate", "--device-config",
         "{ws}/nope.json", "--data-dir", "{ws}/data", "--count", "1"), "nope.json", usage=True,
         code=2),
    Case("edge-simulate-bad-device-file", ("edge", "simulate", "--device-config",
         "{ws}/garbage.json", "--data-dir", "{ws}/data", "--count", "1"), "garbage.json"),
    Case("edge-calibrate-model-error", ("edge", "calibrate", "--config",
         "{ws}/edge-badmodel.yaml", "{ws}/calib"), "bad.onnx"),
    Case("edge-run-bad-config", ("edge", "run", "--config", "{ws}/edge-bad.yaml"), "video.kind"),
    Case("edge-run-model-error", ("edge", "run", "--config", "{ws}/edge-run-badmodel.yaml"),
         "bad.onnx"),
    Case("stack-up-kafka-fails", ("stack", "up"), "kafka", env=STACK_ENV),
]

REFUSED = [
    Case("edge-validate-empty", ("edge", "validate-config", "{ws}/empty-edge.yaml"), "empty"),
    Case("edge-enroll-empty-resident", ("edge", "enroll", "--config", "{ws}/edge-ok.yaml",
         "--resident-id", "", "--card", "0042", "--adult"), "--resident-id", usage=True, code=2),
    Case("edge-enroll-empty-card", ("edge", "enroll", "--config", "{ws}/edge-ok.yaml",
         "--resident-id", "R-1", "--card", "", "--adult"), "--card", usage=True, code=2),
    Case("edge-enroll-future-birth-date", ("edge", "enroll", "--config", "{ws}/edge-ok.yaml",
         "--resident-id", "R-1", "--card", "0042", "--birth-date", TOMORROW), "future",
         usage=True, code=2),
    Case("edge-enroll-birth-date-contradicts-adult", ("edge", "enroll", "--config",
         "{ws}/edge-ok.yaml", "--resident-id", "R-1", "--card", "0042", "--adult",
         "--birth-date", "2020-01-01"), "--adult", usage=True, code=2),
    Case("notice-validate-not-an-email", ("notice", "validate-config", "--cameras",
         "{ws}/cameras-bad-email.yaml"), "email"),
    Case("notice-sheet-base-url-not-a-url", ("notice", "sheet", "--site", "north-garden",
         "--cameras", "{ws}/cameras.yaml", "--out", "{ws}/sheet.pdf", "--base-url",
         "not-a-url"), "--base-url", usage=True, code=2),
    Case("edge-simulate-negative-rate", ("edge", "simulate", "--device-config",
         "{ws}/device.json", "--data-dir", "{ws}/data", "--rate", "-3"), "--rate", usage=True,
         code=2),
    Case("keycard-scrub-negative-days", ("keycard", "scrub", "--older-than-days", "-5"),
         "--older-than-days", usage=True, code=2),
    Case("env-misspelled", ("stack", "status"), "FACEGATE_KAFKA_PROT",
         env={"FACEGATE_KAFKA_PROT": "9092"}),
    Case("edge-simulate-published-nothing", ("edge", "simulate", "--device-config",
         "{ws}/device.json", "--data-dir", "{ws}/data", "--count", "2", "--drain-timeout", "1"),
         "published nothing", code=UNAVAILABLE, also="unreachable"),
]

ALL = KAFKA_DOWN + TRACEBACKS + REFUSED


def _prepare(ws: Workspace) -> None:
    root = ws.root
    (root / "empty.jsonl").write_text("")
    (root / "logdir").mkdir()
    (root / "calib").mkdir()
    (root / "data").mkdir()
    (root / "garbage.json").write_text("this is not { a receipt")
    (root / "font.ttf").write_text("not a font")
    (root / "bad.yaml").write_text("tenant: [unclosed\n  - : :\n")
    (root / "bad.onnx").write_bytes(b"\x00not an onnx model")
    (root / "empty-edge.yaml").write_text("")
    shutil.copy(REPO / "deploy/config/retention.example.yaml", root / "policy.yaml")
    cameras = (REPO / "deploy/config/cameras.example.yaml").read_text()
    (root / "cameras.yaml").write_text(cameras)
    assert "email: privacy@example.com" in cameras
    (root / "cameras-bad-email.yaml").write_text(
        cameras.replace("email: privacy@example.com", "email: not-an-email", 1)
    )
    port = ws.env["FACEGATE_MQTT_PORT"]
    (root / "device.json").write_text(json.dumps({
        "tenant": "acme", "site": "north-garden", "gate": "g1", "device": "d1",
        "mqtt": {"host": "127.0.0.1", "port": int(port), "username": "acme.north-garden.g1.d1",
                 "password": "x" * 24},
    }))  # fmt: skip
    secret = SiteSecret("acme", "north-garden", b"s" * 32).text()
    (root / "site.secret").write_text(secret)  # the gate's copy, for the edge configs
    (root / "data" / "site.secret").write_text(secret)  # and for edge simulate --data-dir
    common = "device_config: device.json\nsite_secret: site.secret\n"
    (root / "edge-badmodel.yaml").write_text(
        common + "video: {kind: none}\ndetector: {path: bad.onnx}\nembedder: {path: bad.onnx}\n"
    )
    (root / "edge-bad.yaml").write_text(common + "video: {kind: holo}\n")
    (root / "edge-run-badmodel.yaml").write_text(
        common + "video: {kind: folder, uri: calib}\ndetector: {path: bad.onnx}\n"
        "embedder: {path: bad.onnx}\ngallery: {path: g.fgg, key_file: g.key}\n"
        "outbox: {path: outbox.sqlite}\nhttp: {enabled: false}\n"
    )
    (root / "edge-ok.yaml").write_text(
        common + "video: {kind: none}\ngallery: {path: g.fgg, key_file: g.key}\n"
        "outbox: {path: outbox.sqlite}\n"
    )
    (root / "edge-run.yaml").write_text(
        common + "video: {kind: none}\ngallery: {path: g.fgg, key_file: g.key}\n"
        "access: {kind: none}\noutbox: {path: outbox.sqlite}\nhttp: {enabled: false}\n"
    )
    subprocess.run([FACEGATE, "edge", "gallery", "init-key", "--key-file", str(root / "g.key")],
                   env=ws.env, check=True, capture_output=True)  # fmt: skip
    subprocess.run([FACEGATE, "audit", "public-key", "--out", str(root / "pub.pem")],
                   env=ws.env, check=True, capture_output=True)  # fmt: skip
    # stack up gets its own free ports and state: Mosquitto starts before Kafka fails.
    mqtt, kafka, controller = free_ports(3)
    ws.values.update(stack_mqtt=str(mqtt), stack_kafka=str(kafka), stack_ctl=str(controller))


@pytest.fixture(scope="module")
def outcomes(workspace: Workspace) -> dict[str, Outcome]:
    _prepare(workspace)
    try:
        return run_all(workspace, ALL)
    finally:
        run(workspace, Case("stack-down", ("stack", "down"), "", env=STACK_ENV))


@pytest.mark.parametrize("case", ALL, ids=lambda c: c.id)
def test_one_error_line(case: Case, outcomes: dict[str, Outcome]) -> None:
    assert_one_error_line(case, outcomes[case.id])


def test_debug_shows_the_traceback(workspace: Workspace, outcomes: dict[str, Outcome]) -> None:
    case = Case("debug", ("--debug", "consent", "show", "--tenant", "acme", "--site", "s",
                "--subject", SUBJECT), "")  # fmt: skip
    out = run(workspace, case)
    assert out.code != 0
    assert "Traceback" in out.stderr and "BrokerError" in out.stderr


def test_qr_code_to_localhost_is_warned_about(
    workspace: Workspace, outcomes: dict[str, Outcome]
) -> None:
    case = Case("sheet-localhost", ("notice", "sheet", "--site", "north-garden", "--cameras",
                "{ws}/cameras.yaml", "--out", "{ws}/local.png", "--base-url",
                "http://127.0.0.1:8080"), "")  # fmt: skip
    out = run(workspace, case)
    assert out.code == 0, out.stderr
    warnings = [line for line in out.stderr_lines if line.startswith("warning: ")]
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0], out.stderr


def test_edge_run_says_when_mqtt_is_unreachable(
    workspace: Workspace, outcomes: dict[str, Outcome]
) -> None:
    """The gate keeps working offline (events queue in the outbox), and says so once."""
    proc = subprocess.Popen(
        [FACEGATE, "edge", "run", "--config", str(workspace.path("edge-run.yaml"))],
        env=workspace.env, cwd=workspace.root, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line.strip())
            if "unreachable" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    warning = [line for line in lines if "unreachable" in line]
    assert len(warning) == 1, lines
    port = workspace.env["FACEGATE_MQTT_PORT"]
    assert "WARNING" in warning[0] and f"127.0.0.1:{port}" in warning[0]
    assert "outbox" in warning[0]
    assert proc.returncode == 0
    assert "Traceback" not in "\n".join(lines) + (rest or "")
