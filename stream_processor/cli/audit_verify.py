"""``facegate audit verify``: the chain, the checkpoints, receipts and witnesses, checked
from the published files and the public key alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from stream_processor.audit.keys import Keyring
from stream_processor.audit.settings import AuditPaths, AuditSettings
from stream_processor.audit.verify import (
    AnchorCheck,
    Finding,
    VerifyReport,
    read_lines,
    verify_log,
)
from stream_processor.audit.witnessed import WitnessReport
from stream_processor.cli.witnessing import verify_witnessing
from stream_processor.rights.receipts import ErasureReceipt
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics


def _describe(receipt: ErasureReceipt) -> str:
    """What a receipt states, in words (printed whether or not it verifies)."""
    import datetime as dt

    c = receipt.claims

    def when(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    scope = ", ".join(c.scope.purposes) if c.scope.purposes is not None else "everything"
    lines = [
        f"receipt {c.request_id}: {c.tenant}/{c.site}, subject {c.subject}, scope: {scope}",
        f"  requested {when(c.requested_at_ms)}, completed {when(c.completed_at_ms)}",
        *(f"  deleted {d.count:>6}  {d.what} ({d.where})" for d in c.deletions),
        *(
            f"  device {d.gate}/{d.device} acknowledged {when(d.acked_at_ms)}: "
            f"{d.templates_removed} template(s), {d.outbox_events_purged} queued event(s)"
            for d in c.devices
        ),
        *(f"  last copy in Kafka topic {k.topic} gone by {when(k.gone_by_ms)}" for k in c.kafka),
        f"  audit log {receipt.audit.log_id} entry {receipt.audit.seq}",
    ]
    return "\n".join(lines)


@click.command()
@click.option("--log", "log_path", type=click.Path(path_type=Path), help="published log (JSONL)")
@click.option(
    "--checkpoints",
    type=click.Path(path_type=Path),
    help="checkpoint file (JSONL); default: the Kafka topic in topic mode "
    "(FACEGATE_AUDIT_MODE=topic), else <state>/audit/checkpoints.jsonl",
)
@click.option(
    "--checkpoints-from-kafka",
    is_flag=True,
    help="read the checkpoints from the Kafka topic instead of the file "
    "(the default in topic mode)",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="operator public key(s), PEM (a file may hold several; repeatable)",
)
@click.option(
    "--receipt",
    "receipts",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="an erasure receipt to check against the log (repeatable)",
)
@click.option(
    "--checkpoint-note",
    "note_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a C2SP checkpoint with its cosignatures, e.g. GET /audit/checkpoint (repeatable; "
    "default: those in <state>/audit/checkpoints.sqlite)",
)
@click.option(
    "--witness-key",
    "witness_keys",
    multiple=True,
    help="a witness's verifier key <name>+<hash>+<base64> (repeatable)",
)
@click.option(
    "--require-witnesses",
    type=click.IntRange(min=0),
    default=0,
    help="fail unless a checkpoint matching the log has this many cosignatures",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def verify(
    log_path: Path | None,
    checkpoints: Path | None,
    checkpoints_from_kafka: bool,
    public_keys: tuple[Path, ...],
    receipts: tuple[Path, ...],
    note_files: tuple[Path, ...],
    witness_keys: tuple[str, ...],
    require_witnesses: int,
    as_json: bool,
) -> None:
    """Verify the whole chain, the checkpoint signatures and receipts, and with
    --witness-key the cosignatures of independent witnesses.

    Needs only the published files and the public key; defaults are the
    files under <state>/audit. Exits 1 and names each failing entry.
    """
    from stream_processor.errors import FacegateError

    if require_witnesses and len(witness_keys) < require_witnesses:
        raise click.UsageError(
            f"--require-witnesses {require_witnesses} needs as many --witness-key options"
        )
    paths = AuditPaths.of(BrokerSettings().state_dir, AuditSettings())
    log_file = log_path or paths.log
    if log_path is None and AuditSettings().mode == "topic":
        _sync_copy()
    if not log_file.is_file():
        what = "a folder, not the log file" if log_file.is_dir() else "no audit log there"
        raise click.ClickException(f"{log_file}: {what}")
    try:
        public = Keyring.load(*(public_keys or (paths.public_key,)))
    except FacegateError as exc:
        raise click.ClickException(str(exc)) from None
    cp_lines = _checkpoint_lines(paths, checkpoints, checkpoints_from_kafka)
    loaded, anchors, receipt_findings = _read_receipts(receipts, public)
    report = verify_log(read_lines(log_file), cp_lines, public, anchors)
    report.findings[:0] = receipt_findings
    witnessing = verify_witnessing(
        log_file,
        note_files or None,
        paths.tree_checkpoints,
        public,
        witness_keys,
        require_witnesses,
        report,
        loaded,
    )
    if as_json:
        click.echo(json.dumps(_report_json(report, witnessing), indent=2))
    else:
        _print_report(report, witnessing, loaded, len(receipts))
    if not report.ok:
        raise SystemExit(1)


def _sync_copy() -> None:
    """Multi-host mode: bring this host's copy of the chain up to the chain topic."""
    from stream_processor.audit.wiring import open_audit

    open_audit(BrokerSettings().state_dir).close()


def _checkpoint_lines(paths: AuditPaths, checkpoints: Path | None, from_kafka: bool) -> list[bytes]:
    """The topic when asked, or by default in topic mode: there every host's signer
    publishes, while a host's file holds only what that host signed."""
    from stream_processor.audit.checkpoint import read_checkpoint_topic
    from stream_processor.errors import BrokerError

    if from_kafka or (checkpoints is None and AuditSettings().mode == "topic"):
        stack = BrokerSettings()
        login = kafka_python_auth(stack, Role.AUDIT)
        topic = Topics().audit_checkpoints
        try:
            return read_checkpoint_topic(stack.kafka_bootstrap, topic, auth=login)
        except BrokerError as exc:
            raise BrokerError(f"the checkpoints cannot be read from Kafka: {exc}") from None
    cp_path = checkpoints or paths.checkpoints
    if cp_path.is_dir():
        raise click.ClickException(f"{cp_path}: a folder, not the checkpoint file")
    return list(read_lines(cp_path)) if cp_path.exists() else []


def _read_receipts(
    receipts: tuple[Path, ...], public: Keyring
) -> tuple[list[ErasureReceipt], list[AnchorCheck], list[Finding]]:
    """The receipts that load, the log entries they claim, and what is wrong with them
    before the log is read (unreadable, badly signed)."""
    from stream_processor.rights.receipts import check_signature, receipt_anchors

    loaded: list[ErasureReceipt] = []
    anchors: list[AnchorCheck] = []
    findings: list[Finding] = []
    for path in receipts:
        try:
            receipt = ErasureReceipt.load(path)
        except ValueError as exc:
            findings.append(Finding("unreadable", f"receipt {path}", str(exc)))
            continue
        loaded.append(receipt)
        findings.extend(
            Finding("bad_signature", f"receipt {receipt.claims.request_id}", problem)
            for problem in check_signature(receipt, public)
        )
        anchors.extend(receipt_anchors(receipt))
    return loaded, anchors, findings


def _report_json(report: VerifyReport, witnessing: WitnessReport) -> dict[str, Any]:
    witnessed = witnessing.witnessed
    return {
        "ok": report.ok,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "last_checkpoint_seq": report.last_checkpoint_seq,
        "unsigned_tail": report.unsigned_tail,
        "anchors_checked": report.anchors_checked,
        "witnessed_size": witnessed.size if witnessed else None,
        "witnesses": [n for n, _ in witnessed.witnesses] if witnessed else [],
        "findings": [f.__dict__ for f in report.findings],
        "warnings": report.warnings,
    }


def _print_report(
    report: VerifyReport, witnessing: WitnessReport, loaded: list[ErasureReceipt], asked: int
) -> None:
    for finding in report.findings:
        click.echo(f"FAIL {finding}")
    for warning in report.warnings:
        click.echo(f"note: {warning}")
    for receipt in loaded:
        click.echo(_describe(receipt))
    if asked and report.ok:
        click.echo(f"{asked} receipt(s) verified: signed, and in the log")
    click.echo(report.summary())
    click.echo(witnessing.summary())
