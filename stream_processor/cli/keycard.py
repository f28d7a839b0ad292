"""``facegate keycard``: key cards on request — open, list (with ages), fulfil, cancel."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stream_processor.cli.options import (
    json_option,
    non_empty,
    place_options,
    resolve_subject,
    subject_options,
)
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from stream_processor.audit.wiring import Audit
    from stream_processor.rights.keycards import KeycardBook, KeycardRequest


def _book() -> tuple[KeycardBook, Audit]:
    from stream_processor.audit.wiring import open_audit
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.keycards import KeycardBook

    state = BrokerSettings().state_dir
    audit = open_audit(state)
    return KeycardBook(connect_rights_db(state), audit=audit.log), audit


@click.group()
def keycard() -> None:
    """Key cards on request: nobody is ever forced to use face recognition."""


@keycard.command()
@place_options
@click.option("--unit", default=None, help="flat / unit the card is for")
@click.option("--contact", default=None, help="phone or e-mail to reach the resident")
@subject_options
def request(
    tenant: str,
    site: str,
    unit: str | None,
    contact: str | None,
    subject: str | None,
    resident_id: str | None,
    site_secret: Path | None,
) -> None:
    """Open a key-card request."""
    from stream_processor.rights.keycards import KeycardError

    subject = resolve_subject(subject, resident_id, site_secret, tenant, site)
    book, audit = _book()
    try:
        req = book.request(tenant, site, channel="cli", unit=unit, contact=contact, subject=subject)
    except KeycardError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        audit.close()
    click.echo(f"key-card request {req.id} open for {tenant}/{site}")


@keycard.command("list")
@click.option("--open", "only_open", is_flag=True, help="only requests not yet fulfilled")
@click.option("--tenant", default=None, help="only this tenant's requests")
@click.option("--site", default=None, help="only this site's requests")
@json_option
def list_(only_open: bool, tenant: str | None, site: str | None, as_json: bool) -> None:
    """List requests with their age; open ones first in the summary."""
    from stream_processor.rights.keycards import KeycardStatus

    book, audit = _book()
    audit.close()
    now = int(time.time() * 1000)
    rows = book.find(KeycardStatus.OPEN if only_open else None, tenant, site)
    if as_json:
        click.echo(json.dumps([r.public_doc(now) for r in rows], indent=2, ensure_ascii=False))
        return
    for r in rows:
        age_h = r.age_s(now) / 3600
        click.echo(
            f"{r.id}  {r.tenant}/{r.site}  {r.status.value:<9}  {age_h:7.1f} h  "
            f"unit={r.unit or '-'}  contact={r.contact or '-'}"
        )
    for s in book.open_summary():
        click.echo(f"open at {s.tenant}/{s.site}: {s.open}, oldest {s.oldest_age_s / 3600:.1f} h")


@keycard.command()
@click.argument("request_id")
@click.option(
    "--card", "card_ref", default=None, callback=non_empty,
    help="the card's number (for an enrolled resident: registered on the site's gates "
    "as a keyed hash; the number is not stored)",
)  # fmt: skip
@click.option(
    "--site-secret", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="the site secret file (needed when the request names an enrolled resident)",
)  # fmt: skip
def fulfil(request_id: str, card_ref: str | None, site_secret: Path | None) -> None:
    """Mark a request fulfilled: the card was handed over. For an enrolled resident this
    withdraws the face consent and registers the card on every gate of the site."""
    from stream_processor.rights.keycards import KeycardBook, KeycardError

    book, audit = _book()
    try:
        req = book.get(request_id)
        if req.subject is not None:
            card_ref = _registered_card(req.tenant, req.site, card_ref, site_secret)
            book = KeycardBook(
                book.db, audit=audit.log, on_fulfilled=_publish_fulfilment(BrokerSettings())
            )
        req = book.fulfil(request_id, card_ref)
    except KeycardError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        audit.close()
    click.echo(f"{req.id} fulfilled after {req.age_s(req.closed_at_ms or 0) / 3600:.1f} h")
    if req.subject is not None:
        click.echo("face consent withdrawn; card registered on the site's gates")


def _registered_card(tenant: str, site: str, number: str | None, secret: Path | None) -> str:
    from edge_agent.pseudonym import load_site_secret
    from stream_processor.rights.keycard_fulfil import card_digest

    if number is None or secret is None:
        raise click.UsageError(
            "the request names an enrolled resident: give --card NUMBER and --site-secret FILE"
            " (the card is registered on the site's gates)"
        )
    return card_digest(load_site_secret(secret, tenant, site), tenant, site, number)


def _publish_fulfilment(stack: BrokerSettings) -> Callable[[KeycardRequest], None]:
    """Writes the face-consent withdrawal and the register_card command (acks=all)."""
    from edge_agent.wire.commands import encode
    from stream_processor.processor.ledger import site_key
    from stream_processor.rights.keycard_fulfil import fulfilment
    from stream_processor.runtime.ledger_client import write_records
    from stream_processor.runtime.settings import Topics

    office = kafka_python_auth(stack, Role.OFFICE)

    def publish(req: KeycardRequest) -> None:
        assert req.subject is not None and req.card_ref is not None
        f = fulfilment(
            req.id, req.requested_at_ms, req.tenant, req.site, req.subject, req.card_ref,
            int(time.time() * 1000),
        )  # fmt: skip
        topics = Topics()
        write_records(stack.kafka_bootstrap, topics.consent,
                      [(f.withdrawal.key, f.withdrawal.encode())], auth=office)  # fmt: skip
        write_records(stack.kafka_bootstrap, topics.commands,
                      [(site_key(req.tenant, req.site), encode(f.command))],
                      auth=office)  # fmt: skip

    return publish


@keycard.command()
@click.argument("request_id")
@click.option("--note", required=True, help="why, in words (kept with the request, not logged)")
@click.option(
    "--reason", default="resident_withdrew", show_default=True,
    type=click.Choice(["resident_withdrew", "moved_out", "duplicate", "entered_in_error"]),
    help="why, as written to the audit log",
)  # fmt: skip
def cancel(request_id: str, note: str, reason: str) -> None:
    """Close a request without a card (say why; audited)."""
    from stream_processor.rights.keycards import KeycardError

    book, audit = _book()
    try:
        req = book.cancel(request_id, note, reason)
    except KeycardError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        audit.close()
    click.echo(f"{req.id} cancelled")


@keycard.command()
@click.option(
    "--older-than-days", type=click.FloatRange(min=0), default=30.0, show_default=True,
    help="closed at least this many days ago",
)  # fmt: skip
def scrub(older_than_days: float) -> None:
    """Forget unit and contact of requests closed more than N days ago."""
    book, audit = _book()
    audit.close()
    n = book.scrub_closed(older_than_days * 86400)
    click.echo(f"scrubbed contact details of {n} closed request(s)")
