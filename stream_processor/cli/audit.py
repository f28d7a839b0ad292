"""``facegate audit``: the tamper-evident audit log — verify, checkpoint, export, public key."""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stream_processor.audit.settings import AuditPaths, AuditSettings
from stream_processor.cli.witnessing import ask_witnesses
from stream_processor.rights.receipts import ErasureReceipt
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics

if TYPE_CHECKING:
    from stream_processor.audit.checkpoint import KafkaCheckpointPublisher


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


def _checkpoint_publisher(stack: BrokerSettings) -> KafkaCheckpointPublisher:
    """Publishes to the checkpoint topic, logged in as the audit role."""
    from stream_processor.audit.wiring import kafka_publisher

    login = kafka_python_auth(stack, Role.AUDIT)
    return kafka_publisher(stack.kafka_bootstrap, Topics().audit_checkpoints, login)


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


def _register_commands() -> None:
    from stream_processor.cli.audit_follow import follow
    from stream_processor.cli.audit_verify import verify
    from stream_processor.cli.audit_writer import writer

    audit.add_command(verify)
    audit.add_command(follow)
    audit.add_command(writer)


_register_commands()
