"""``facegate audit``: the tamper-evident audit log — verify, checkpoint, export, public key."""

from __future__ import annotations

import json
import shutil
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from stream_processor.cli.witnessing import ask_witnesses, verify_witnessing
from stream_processor.rights.receipts import ErasureReceipt
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics

if TYPE_CHECKING:
    from stream_processor.audit.checkpoint import KafkaCheckpointPublisher


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


def _paths() -> AuditPaths:
    return AuditPaths.of(BrokerSettings().state_dir, AuditSettings())


def _load_receipt(path: Path) -> ErasureReceipt:
    from pydantic import ValidationError

    try:
        return ErasureReceipt.load(path)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()[:3]
        )
        raise click.ClickException(f"{path}: not an erasure receipt ({reasons})") from None


@click.group()
def audit() -> None:
    """Tamper-evident audit log: hash chain, signed checkpoints, receipts."""


@audit.command()
@click.option("--log", "log_path", type=click.Path(path_type=Path), help="published log (JSONL)")
@click.option("--checkpoints", type=click.Path(path_type=Path), help="checkpoint file (JSONL)")
@click.option(
    "--checkpoints-from-kafka",
    is_flag=True,
    help="read the checkpoints from the Kafka topic instead of the file",
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
    paths = _paths()
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


def _checkpoint_publisher(stack: BrokerSettings) -> KafkaCheckpointPublisher:
    """Publishes to the checkpoint topic, logged in as the audit role."""
    from stream_processor.audit.wiring import kafka_publisher

    login = kafka_python_auth(stack, Role.AUDIT)
    return kafka_publisher(stack.kafka_bootstrap, Topics().audit_checkpoints, login)


def _checkpoint_lines(paths: AuditPaths, checkpoints: Path | None, from_kafka: bool) -> list[bytes]:
    from stream_processor.audit.checkpoint import read_checkpoint_topic

    if from_kafka:
        stack = BrokerSettings()
        login = kafka_python_auth(stack, Role.AUDIT)
        return read_checkpoint_topic(stack.kafka_bootstrap, Topics().audit_checkpoints, auth=login)
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


@audit.command("public-key")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write it here")
def public_key(out: Path | None) -> None:
    """Print the operator's public key (created with the key on first use)."""
    from stream_processor.audit.wiring import open_audit

    a = open_audit(BrokerSettings().state_dir)
    try:
        pem = a.key.public.pem()
    finally:
        a.close()
    if out:
        out.write_text(pem)
        click.echo(f"public key {a.key.key_id} → {out}")
    else:
        click.echo(pem, nl=False)


@audit.command()
@click.option("--publish/--no-publish", default=True, help="also publish to Kafka")
@click.option("--force", is_flag=True, help="sign even if the head has not moved")
def checkpoint(publish: bool, force: bool) -> None:
    """Sign the head of the log once (for cron, or after an erasure)."""
    from stream_processor.audit.wiring import open_audit

    stack = BrokerSettings()
    a = open_audit(stack.state_dir, role=Role.AUDIT)
    publisher = _checkpoint_publisher(stack) if publish else None
    try:
        cp = a.checkpointer(publisher).checkpoint(force=force)
        click.echo(
            f"checkpoint at seq {cp.seq}: {cp.hash}" if cp else "head unchanged; nothing to sign"
        )
        ask_witnesses(a, stack.state_dir)
    finally:
        a.close()
        if publisher is not None:
            publisher.close()


@audit.command()
@click.option("--interval", type=float, default=None, help="seconds between checkpoints")
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), default=0, show_default=True,
    help="serve the log's signing health on /metrics (FACEGATE_AUDIT_METRICS_HOST); 0 = off",
)
def checkpointer(interval: float | None, metrics_port: int) -> None:
    """Sign and publish checkpoints every interval until interrupted (composition root)."""
    from stream_processor.audit.keys import KEY_FILE, OperatorKey
    from stream_processor.audit.wiring import open_audit
    from stream_processor.errors import BrokerError

    stack = BrokerSettings()
    settings = AuditSettings()
    every = interval or settings.checkpoint_interval_s
    a = open_audit(stack.state_dir, settings, role=Role.AUDIT)
    publisher = _checkpoint_publisher(stack)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    click.echo(f"audit checkpointer: every {every}s → {a.paths.checkpoints} and Kafka")
    if metrics_port:  # after the handlers: a stop from now on is clean (and withdraws it)
        _serve_audit_metrics(stack.state_dir, a.paths, settings.metrics_host, metrics_port)
    try:
        while True:
            try:
                # Re-read the key each round: after `audit rotate-key` the new one signs.
                a.key = OperatorKey.load(a.paths.secrets / KEY_FILE)
                a.checkpointer(publisher).checkpoint()
                ask_witnesses(a, stack.state_dir)
            except BrokerError as exc:
                click.echo(f"publish failed, retrying next round: {exc}", err=True)
            if stop.is_set():  # the round after the stop signs what came before it
                break
            stop.wait(every)
    finally:
        publisher.close()
        a.close()


def _serve_audit_metrics(state_dir: Path, paths: AuditPaths, host: str, port: int) -> None:
    """Unsigned entries and checkpoint age, read from the files at each scrape."""
    from prometheus_client import CollectorRegistry, start_http_server

    from stream_processor.audit.checkpoint import CheckpointFile
    from stream_processor.audit.log import FileAuditLog
    from stream_processor.audit.metrics import register_audit_metrics
    from stream_processor.runtime.targets import announce

    registry = CollectorRegistry()
    register_audit_metrics(FileAuditLog(paths.log), CheckpointFile(paths.checkpoints), registry)
    start_http_server(port, addr=host, registry=registry)
    announce(state_dir, "facegate-audit", port, host=host, name="checkpointer")


@audit.command()
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="the folder to publish (created if missing)",
)  # fmt: skip
def export(out: Path) -> None:
    """Copy the publishable files (log, checkpoints, public key) to a folder."""
    paths = _paths()
    out.mkdir(parents=True, exist_ok=True)
    for src in (paths.log, paths.checkpoints, paths.public_key):
        if src.exists():
            shutil.copy2(src, out / src.name)
    from stream_processor.audit.witnessed import published_notes

    notes = published_notes(paths.tree_checkpoints)
    for i, note in enumerate(notes):  # C2SP checkpoints, cosigned ones and the latest
        (out / f"checkpoint-{i:04d}.txt").write_bytes(note.encode())
    (out / "VERIFY.txt").write_text(
        "Verify with: facegate audit verify --log log.jsonl --checkpoints checkpoints.jsonl "
        "--public-key operator-public.pem [--receipt your-receipt.json]\n"
        "With witnesses: add --checkpoint-note checkpoint-NNNN.txt (each) "
        "--witness-key <witness key> --require-witnesses 1\n"
        "Entries name subjects only by salted commitments; your receipt holds the salts.\n"
    )
    click.echo(f"published audit files → {out}")


@audit.command("export-schema")
@click.option(
    "--out",
    default=Path("docs/schema"),
    type=click.Path(file_okay=False, path_type=Path),
    show_default=True,
    help="the folder the schemas are written to",
)
def export_schema(out: Path) -> None:
    """Write the JSON Schemas of audit entries, checkpoints, receipts and subject exports."""
    from stream_processor.rights.schemas import write_schemas

    for path in write_schemas(out):
        click.echo(f"wrote {path}")


@audit.command()
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), default=0, show_default=True,
    help="Prometheus port on FACEGATE_AUDIT_METRICS_HOST (quarantined records, outage"
    " retries); 0 = off",
)  # fmt: skip
def follow(metrics_port: int) -> None:
    """Write consent changes and policy versions from their topics into the log (until SIGTERM).

    A record that cannot be logged goes to the dead-letter topic with its coordinates."""
    import signal

    from stream_processor.audit.follower import LedgerAuditor, OffsetFile
    from stream_processor.audit.follower import follow as follow_ledgers
    from stream_processor.audit.wiring import open_audit
    from stream_processor.quarantine import ConsumerMetrics, KafkaDeadLetters, Quarantine
    from stream_processor.runtime.targets import announce

    stack = BrokerSettings()
    topics = Topics()
    a = open_audit(stack.state_dir, role=Role.AUDIT)
    stop = {"now": False}

    def _stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    auditor = LedgerAuditor(a.log, topics.consent, topics.policies)
    click.echo(f"audit follower: {topics.consent}, {topics.policies} → {a.paths.log}")
    if metrics_port:
        from prometheus_client import start_http_server

        host = AuditSettings().metrics_host
        start_http_server(metrics_port, addr=host)
        announce(stack.state_dir, "facegate-audit", metrics_port, host=host)
    # The ledgers' records name a subject in fields the redaction does not know: no bytes.
    quarantine = Quarantine("audit_follower", ConsumerMetrics(), keep_bytes=False)
    login = kafka_python_auth(stack, Role.AUDIT)
    dead_letters = KafkaDeadLetters(stack.kafka_bootstrap, topics.dlq, auth=login)
    try:
        n = follow_ledgers(
            stack.kafka_bootstrap,
            auditor,
            OffsetFile(a.paths.root / "follower-offsets.json"),
            lambda: stop["now"],
            quarantine=quarantine,
            dead_letters=dead_letters,
            auth=login,
        )
    finally:
        dead_letters.close()
        a.close()
    click.echo(f"audit follower stopped after {n} entries")


@audit.command("rotate-key")
@click.option("--reason", required=True, help="why (scheduled, staff change, suspected leak…)")
@click.option("--publish/--no-publish", default=True, help="publish the checkpoints to Kafka")
def rotate_key(reason: str, publish: bool) -> None:
    """Retire the signing key and start a new one; both stay verifiable.

    The head is sealed with the old key, the rotation is logged, and the new
    key signs from then on; its public half is appended to the published file.
    """
    from stream_processor.audit import record
    from stream_processor.audit.keys import OperatorKey
    from stream_processor.audit.tlog import operator_signer
    from stream_processor.audit.wiring import open_audit, publish_public_key

    stack = BrokerSettings()
    publisher = _checkpoint_publisher(stack) if publish else None
    a = open_audit(stack.state_dir, role=Role.AUDIT)
    try:
        a.checkpointer(publisher).checkpoint()  # seal what the old key vouches for
        old, new = OperatorKey.rotate(a.paths.secrets)
        publish_public_key(a.paths, new)
        record.key_rotated(
            a.log,
            old_key_id=old.key_id,
            new_key_id=new.key_id,
            reason=reason,
            new_vkey=operator_signer(new, a.settings.log_id).verifier.vkey(),
        )
        a.key = new
        a.checkpointer(publisher).checkpoint()
    finally:
        a.close()
        if publisher is not None:
            publisher.close()
    click.echo(f"signing key {old.key_id} retired; now {new.key_id} ({a.paths.public_key})")


@audit.command("print-receipt")
@click.argument("receipt_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help=".pdf or .png")
@click.option(
    "--verify-url", default=None, help="where residents check it (default: <public url>/receipt)"
)
@click.option(
    "--font",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a CJK font for the Chinese text",
)
def print_receipt(
    receipt_file: Path, out: Path | None, verify_url: str | None, font: Path | None
) -> None:
    """Render a receipt for the resident to take home: text (zh/en) and a QR code of it."""
    from stream_processor.rights.receipt_print import render_receipt
    from stream_processor.web.settings import WebSettings

    receipt = _load_receipt(receipt_file)
    url = verify_url or WebSettings().public_url.rstrip("/") + "/receipt"
    target = out or receipt_file.with_suffix(".pdf")
    printed = render_receipt(receipt, target, url, font)
    click.echo(f"receipt {receipt.claims.request_id} → {printed.path}")
    if printed.qr_box is None:
        click.echo("note: too large for one QR code; hand over the JSON file too", err=True)


def _register_writer() -> None:
    from stream_processor.cli.audit_writer import writer

    audit.add_command(writer)


_register_writer()
