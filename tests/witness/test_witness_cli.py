"""The commands as an operator and a third party run them: ``audit checkpoint`` asks the
configured witnesses and hands kept receipts their proof; ``witness run --once``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from stream_processor.audit.note import Verifier
from stream_processor.audit.settings import AuditSettings
from stream_processor.audit.wiring import open_audit
from stream_processor.rights.db import open_rights_db, rights_db_path
from stream_processor.rights.receipt_proof import check_witnessed
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import issue_receipt
from tests.conftest import FACEGATE, REPO
from tests.support.audit import make_claims, uuid7
from tests.support.tlog import TlogRig, operator_vkey

pytestmark = pytest.mark.e2e


def facegate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FACEGATE, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_checkpoint_asks_witnesses_and_witnesses_kept_receipts(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "reference_witness", REPO / "docs" / "verifier" / "reference_witness.py"
    )
    assert spec is not None and spec.loader is not None
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    state = tmp_path / "state"
    audit = open_audit(state, AuditSettings(log_id="acme.example"))
    receipt = issue_receipt(
        make_claims(uuid7()), sink=audit.log, key=audit.key, log_id="acme.example"
    )
    db = open_rights_db(rights_db_path(state))
    ReceiptStore(db).save(receipt)
    witness = ref.Witness(
        "notary.example/w1",
        ref.load_key(tmp_path / "w.pem"),
        tmp_path / "w.json",
        [operator_vkey(audit)],
    )
    audit.close()
    server = ref.serve(witness, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "FACEGATE_STATE_DIR": str(state),
        "FACEGATE_AUDIT_LOG_ID": "acme.example",
        "FACEGATE_AUDIT_WITNESS_URLS": json.dumps([f"http://127.0.0.1:{server.server_address[1]}"]),
        "FACEGATE_AUDIT_WITNESS_KEYS": json.dumps([witness.vkey()]),
    }
    try:
        out = facegate(env, "audit", "checkpoint", "--no-publish")
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0, out.stdout + out.stderr
    assert ": cosigned" in out.stdout and "1 receipt(s) now carry" in out.stdout, out.stdout
    kept = ReceiptStore(db).get(receipt.claims.request_id)
    db.close()
    assert kept is not None and kept.witnessed is not None
    check = check_witnessed(kept, audit.key.public, [Verifier.parse(witness.vkey())])
    assert check.ok and check.witnesses[0][0] == "notary.example/w1"
    published = tmp_path / "published"
    assert facegate(env, "audit", "export", "--out", str(published)).returncode == 0
    notes = sorted(published.glob("checkpoint-*.txt"))
    assert notes
    args = ["audit", "verify", "--log", str(published / "log.jsonl")]
    args += ["--public-key", str(published / "operator-public.pem")]
    args += [x for n in notes for x in ("--checkpoint-note", str(n))]
    args += ["--witness-key", witness.vkey(), "--require-witnesses", "1"]
    done = facegate(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_witness_run_once_and_public_key(tlog_rig: TlogRig, tmp_path: Path) -> None:
    rig = tlog_rig
    rig.add(3)
    rig.checkpoint()
    env = {"FACEGATE_WITNESS_STATE_DIR": str(tmp_path / "third-party")}
    key = facegate(env, "witness", "public-key")
    assert key.returncode == 0 and Verifier.parse(key.stdout.strip()).kind == 4
    run = ["witness", "run", "--once", "--log-url", rig.url, "--log-key", operator_vkey(rig.audit)]
    out = facegate(env, *run)
    assert out.returncode == 0 and out.stdout.startswith("cosigned: size 3"), (
        out.stdout + out.stderr
    )
    missing = facegate(env, "witness", "run", "--once", "--log-url", rig.url)
    assert (
        missing.returncode != 0 and "Error" in missing.stderr and "Traceback" not in missing.stderr
    )
    down = facegate(env, *run[:-4], "--log-url", "http://127.0.0.1:9", "--log-key", run[-1])
    assert down.returncode == 1 and "Error: the log is unavailable" in down.stderr
    assert "Traceback" not in down.stderr


def test_witness_run_serves_push_as_a_process(tmp_path: Path) -> None:
    import time
    import urllib.request

    from stream_processor.audit import record
    from tests.conftest import free_ports
    from tests.support.audit import pseudonym_of

    state = tmp_path / "operator"
    audit = open_audit(state, AuditSettings(log_id="acme.example"))
    port = free_ports(1)[0]
    env = {**os.environ, "FACEGATE_WITNESS_STATE_DIR": str(tmp_path / "third-party")}
    argv = [FACEGATE, "witness", "run", "--push-only", "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--log-key", operator_vkey(audit)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                vkey = urllib.request.urlopen(url + "/public-key", timeout=2).read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "witness never up"
                time.sleep(0.2)
        audit.close()
        settings = AuditSettings(
            log_id="acme.example", witness_keys=[vkey.strip()], witness_urls=[url]
        )
        audit = open_audit(state, settings)
        for i in range(3):
            record.consent_changed(
                audit.log, tenant="acme", site="north", subject=pseudonym_of(f"p-{i}"),
                purpose="access_control", granted=True, by_guardian=False,
            )  # fmt: skip
        audit.checkpointer(None).checkpoint()
        assert audit.request_cosignatures() == {url: None}
        metrics = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
        assert "facegate_witness_cosigned_tree_size 3.0" in metrics
    finally:
        proc.terminate()
        proc.wait(30)
        audit.close()
