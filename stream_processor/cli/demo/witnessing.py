"""The demo's independent witness: a ``facegate witness`` process that cosigns the audit
log's checkpoints when pushed, so an erasure receipt comes out witnessed at once."""

from __future__ import annotations

import json

from stream_processor.cli.demo.procs import Children, Cli


def log_key(state_dir_env: dict[str, str]) -> str:
    """The operator's checkpoint verifier key (the audit key is created on first use)."""
    from pathlib import Path

    from stream_processor.audit.tlog import operator_signer
    from stream_processor.audit.wiring import open_audit

    a = open_audit(Path(state_dir_env["FACEGATE_STATE_DIR"]))
    try:
        return str(operator_signer(a.key, a.settings.log_id).verifier.vkey())
    finally:
        a.close()


def start_witness(
    cli: Cli, children: Children, env: dict[str, str], web_url: str, port: int
) -> tuple[str, dict[str, str]]:
    """Start the witness; returns its verifier key and the audit settings that push to it."""
    witness_env = {
        "FACEGATE_WITNESS_STATE_DIR": env["FACEGATE_STATE_DIR"] + "/witness",
        "FACEGATE_WITNESS_NAME": "witness.demo.example/notary",
    }
    vkey = cli("witness", "public-key", extra_env=witness_env).stdout.strip()
    children.env.update(witness_env)
    children.start("witness", "witness", "run", "--log-url", web_url, "--log-key", log_key(env),
                   "--port", str(port), "--push-only")  # fmt: skip
    audit_env = {
        "FACEGATE_AUDIT_WITNESS_URLS": json.dumps([f"http://127.0.0.1:{port}"]),
        "FACEGATE_AUDIT_WITNESS_KEYS": json.dumps([vkey]),
    }
    return vkey, audit_env
