"""``facegate erasure request|status|withdrawals|receipt|waive|worker``: erasure end to end.

``request`` puts an ``ErasureRequest`` on the erasure topic (``FACEGATE_TOPIC_ERASURE``);
``worker`` (the composition root of the erasure worker) carries it out and issues the
signed receipt; ``status`` and ``receipt`` read what the worker keeps (the rights DB).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stream_processor.cli.options import (
    place_options,
    require_subject,
    subject_options,
)
from stream_processor.erasure.settings import ErasureSettings
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings

if TYPE_CHECKING:
    from stream_processor.erasure.book import ErasureBook
    from stream_processor.rights.db_port import RightsDb
    from stream_processor.rights.receipt_store import ReceiptStore


def _db() -> RightsDb:
    from stream_processor.rights.db import connect_rights_db

    return connect_rights_db(BrokerSettings().state_dir, sqlite_path=ErasureSettings().db_path)


def _book() -> ErasureBook:
    from stream_processor.erasure.book import ErasureBook

    return ErasureBook(_db())


def _receipts() -> ReceiptStore:
    from stream_processor.rights.receipt_store import ReceiptStore

    return ReceiptStore(_db())


@click.group()
def erasure() -> None:
    """Erase a subject everywhere (store, ledger, gate devices) and prove it with a receipt."""


@erasure.command()
@place_options
@subject_options
@click.option(
    "--channel",
    type=click.Choice(["office", "web", "api", "cli", "court"]),
    default="office",
    show_default=True,
    help="how the request reached the operator (goes into the audit log)",
)
@click.option(
    "--wait", "wait_s", type=click.FloatRange(min=0), default=0.0,
    help="wait up to N s for the receipt (exit 3 if still pending)",
)  # fmt: skip
def request(
    tenant: str,
    site: str,
    subject: str | None,
    resident_id: str | None,
    site_secret: Path | None,
    channel: str,
    wait_s: float,
) -> None:
    """Ask for an erasure; prints the request id (keep it: it fetches the receipt)."""
    import msgspec

    from edge_agent.wire.ids import new_event_id
    from stream_processor.erasure.progress import ErasureRequest
    from stream_processor.runtime.ledger_client import write_records
    from stream_processor.runtime.settings import Topics

    pseudonym = require_subject(subject, resident_id, site_secret, tenant, site)
    now_ms = int(time.time() * 1000)
    try:
        req = msgspec.convert(
            {
                "request_id": new_event_id(now_ms), "tenant": tenant, "site": site,
                "subject": pseudonym, "channel": channel, "requested_at_ms": now_ms,
            },
            ErasureRequest,
        )  # fmt: skip
    except msgspec.ValidationError as exc:
        raise click.BadParameter(str(exc)) from exc
    stack = BrokerSettings()
    write_records(
        stack.kafka_bootstrap,
        Topics().erasure,
        [(req.request_id.encode(), req.encode())],
        auth=kafka_python_auth(stack, Role.OFFICE),
    )
    click.echo(req.request_id)
    if wait_s > 0:
        receipts = _receipts()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if receipts.get(req.request_id) is not None:
                click.echo("complete: facegate erasure receipt " + req.request_id, err=True)
                return
            time.sleep(0.05)
        click.echo(f"still pending after {wait_s:.0f} s: facegate erasure status "
                   f"{req.request_id}", err=True)  # fmt: skip
        raise SystemExit(3)


@erasure.command()
@click.argument("request_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
def status(request_id: str | None, as_json: bool) -> None:
    """One erasure's status (which devices still owe an acknowledgement); without an id,
    the most recent ones. Never prints a pseudonym."""
    book = _book()
    now_ms = int(time.time() * 1000)
    found = [book.get(request_id)] if request_id else book.recent()
    if request_id and found[0] is None:
        raise click.ClickException(f"no erasure {request_id} (not yet taken by a worker?)")
    docs = [p.describe(now_ms) for p in found if p is not None]
    for doc, p in zip(docs, found, strict=True):
        assert p is not None
        doc["receipt"] = book.completed_at(p.request.request_id) is not None
    if as_json:
        click.echo(json.dumps(docs[0] if request_id else docs, indent=2))
        return
    if not docs:
        click.echo("no erasure requests: nothing pending")
        return
    for d in docs:
        line = f"{d['request_id']}  {d['tenant']}/{d['site']}  {d['status']}  age {d['age_s']} s"
        if d["status"] == "pending":
            line += "  stores " + ("done" if d["stores_done"] else "pending")
            if d["devices_pending"]:
                line += f"  waiting for {len(d['devices_pending'])} device(s): "
                line += ", ".join(d["devices_pending"])
            if d["devices_waived"]:
                line += "  waived: " + ", ".join(d["devices_waived"])
            for dev, why in d["device_failures"].items():
                line += f"\n    {dev} reported: {why}"
        else:
            line += f"  ({len(d['devices_acked'])} device(s) acknowledged)"
        click.echo(line)
    if request_id is None and not any(d["status"] == "pending" for d in docs):
        click.echo("nothing pending")


@erasure.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
def withdrawals(as_json: bool) -> None:
    """Withdrawal commands some gate has not acknowledged yet (the worker re-sends them),
    which devices owe them, and whether past the alarm bound. Never prints a pseudonym."""
    from stream_processor.erasure.withdrawals import WithdrawalBook

    alarm_ms = int(ErasureSettings().withdrawal_alarm_after_s * 1000)
    now_ms = int(time.time() * 1000)
    docs = [p.describe(now_ms, alarm_ms) for p in WithdrawalBook(_db()).pending()]
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    if not docs:
        click.echo("no withdrawal waiting for a gate")
    for d in docs:
        click.echo(
            f"{d['command_id']}  {d['tenant']}/{d['site']}  purpose {d['purpose']}  age "
            f"{d['age_s']} s  sent {d['sends']}x  waiting for "
            + ", ".join(d["devices_pending"])
            + ("  OVERDUE" if d["overdue"] else "")
        )


@erasure.command()
@click.argument("request_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="default: stdout")
def receipt(request_id: str, out: Path | None) -> None:
    """Print the signed receipt of a completed erasure (JSON; check it with
    ``facegate audit verify --receipt FILE``)."""
    r = _receipts().get(request_id)
    if r is None:
        book = _book()
        p = book.get(request_id)
        state = "unknown" if p is None else p.status.value
        raise click.ClickException(f"no receipt for {request_id} (erasure {state})")
    text = r.to_json()
    if out is not None:
        out.write_text(text + "\n")
        click.echo(f"receipt written to {out}", err=True)
    else:
        click.echo(text)


@erasure.command()
@click.option(
    "--device", "username", required=True, metavar="TENANT.SITE.GATE.DEVICE",
    help="the device's account name (facegate devices list)",
)  # fmt: skip
@click.option(
    "--reason", required=True,
    type=click.Choice(["destroyed", "wiped", "replaced", "lost", "stolen"]),
    help="why it will never acknowledge (written to the audit log and the receipts)",
)  # fmt: skip
@click.option("--by", required=True, help="the privacy officer's account id (audited)")
def waive(username: str, reason: str, by: str) -> None:
    """Retire a device that will never acknowledge (privacy officer): released from the
    erasures it owes now and from later ones. Audited; every such receipt names it."""
    from edge_agent.wire.topics import DeviceIdentity
    from stream_processor.audit.wiring import open_audit
    from stream_processor.erasure.waiver import WaiverBook, waive_device
    from stream_processor.errors import InvalidInput

    parts = username.split(".")
    if len(parts) != 4:
        raise click.BadParameter("expected TENANT.SITE.GATE.DEVICE", param_hint="--device")
    try:
        identity = DeviceIdentity(*parts)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None
    audit = open_audit(BrokerSettings().state_dir)
    try:
        retire = WaiverBook(_db())
        ids = waive_device(
            _book(), audit.log, identity, reason=reason, by=by, now_ms=int(time.time() * 1000),
            retire=retire,
        )  # fmt: skip
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        audit.close()
    click.echo(f"waived {username} ({reason}) for {len(ids)} erasure(s): " + ", ".join(ids))
    click.echo("later erasures of the site start with it waived (named on their receipts)")


@erasure.command()
def worker() -> None:
    """Run the erasure worker until SIGTERM/SIGINT (FACEGATE_ERASURE_*)."""
    import faust

    from stream_processor.erasure.wiring import build

    app = build(BrokerSettings(), ErasureSettings())
    from stream_processor.cli.handler import run_faust_worker, worker_log_level

    level = worker_log_level()
    run_faust_worker(faust.Worker(app, loglevel=level, quiet=True, redirect_stdouts=False))


@erasure.command(name="validate-config")
def validate_config() -> None:
    """Check the FACEGATE_ERASURE_* settings; print them, or one 'Error:' line and exit 1."""
    click.echo(ErasureSettings().model_dump_json(indent=2))
