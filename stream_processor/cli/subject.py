"""``facegate subject export``: everything held about one subject, as JSON.

Every export is audited before anything is read (``rights/export_audit.py``):
who, the stated reason, the case, the parts — the subject as a commitment.
An export by ``--resident-id`` must state ``--reason``; the per-person history
goes only into the subject's own export (``--reason access_request``).
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stream_processor.cli.options import place_options, require_subject, subject_options
from stream_processor.rights.export_audit import REASONS
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings

if TYPE_CHECKING:
    from stream_processor.audit.wiring import Audit
    from stream_processor.rights.export import SubjectExport


@click.group()
def subject() -> None:
    """Data-subject requests: access export."""


def _without_that_part(exc: Exception) -> Exception:
    """A part of the export cannot be read: say how to export without it."""
    from stream_processor.errors import BrokerError

    if isinstance(exc, BrokerError):  # keeps its exit code (69) and the stack hint
        return BrokerError(f"{exc}; or export without the consent ledger: --no-ledger")
    return click.ClickException(
        f"{exc} (--no-ledger / --no-store export without that part, and say so)"
    )


@subject.command()
@place_options
@subject_options
@click.option(
    "--receipt",
    "receipt_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="receipts the subject brings (they open entries the operator has forgotten)",
)
@click.option(
    "--reason",
    type=click.Choice(REASONS),
    default=None,
    help="why (audited); required with --resident-id; default with --subject: access_request "
    "(the subject's own request, the only export with their stored events)",
)
@click.option(
    "--case-ref", default=None, help="the case or ticket of the request (audited; A-Z a-z 0-9 ._:-)"
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="default: stdout")
@click.option(
    "--store/--no-store",
    "with_store",
    default=True,
    help="include the stored events (the store of FACEGATE_STORE)",
)
@click.option(
    "--ledger/--no-ledger",
    "with_ledger",
    default=True,
    help="include the consent records in force (the consent topic on Kafka)",
)
def export(
    tenant: str,
    site: str,
    subject: str | None,
    resident_id: str | None,
    site_secret: Path | None,
    receipt_files: tuple[Path, ...],
    reason: str | None,
    case_ref: str | None,
    out: Path | None,
    with_store: bool,
    with_ledger: bool,
) -> None:
    """Write the subject access export (JSON); every export is audited first."""
    from stream_processor.audit.wiring import open_audit
    from stream_processor.errors import FacegateError
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.export import build_export
    from stream_processor.rights.export_audit import parts_note
    from stream_processor.rights.keycards import KeycardBook
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.rights.receipts import ErasureReceipt

    pseudonym = require_subject(subject, resident_id, site_secret, tenant, site)
    stack = BrokerSettings()
    state = stack.state_dir
    audit = open_audit(state)
    try:
        parts = _audited(audit, tenant, site, pseudonym, resident_id, reason, case_ref,
                         with_store, with_ledger)  # fmt: skip
    except BaseException:
        audit.close()
        raise
    withheld = parts_note(parts, with_store)
    with_store = "stored_events" in parts
    db = connect_rights_db(state)
    store, events, consent = _sources(stack, with_store, with_ledger)
    from stream_processor.erasure.book import ErasureBook
    from stream_processor.erasure.settings import ErasureSettings

    erasure_db_path = ErasureSettings().db_path
    erasure_db = connect_rights_db(state, sqlite_path=erasure_db_path) if erasure_db_path else db
    try:
        doc = build_export(
            tenant,
            site,
            pseudonym,
            audit_entries=audit.log.entries(),
            openings=audit.openings,
            keycards=KeycardBook(db),
            receipts=ReceiptStore(db),
            brought_receipts=[ErasureReceipt.load(p) for p in receipt_files],
            events=events,
            consent=consent,
            pending=ErasureBook(erasure_db),
            withheld=withheld,
        )
    except FacegateError as exc:
        raise _without_that_part(exc) from None
    finally:
        audit.close()
        if erasure_db is not db:
            erasure_db.close()
        db.close()
        if store is not None:
            store.close()
    _write(doc, out)


def _sources(stack: BrokerSettings, with_store: bool, with_ledger: bool) -> tuple[Any, Any, Any]:
    """The event store (to close), its subject events, the consent ledger — as asked."""
    store = events = consent = None
    if with_store:
        from stream_processor.processor.settings import ProcessorSettings
        from stream_processor.rights.export_sources import StoreSubjectEvents
        from stream_processor.store.factory import store_factory

        store = store_factory(stack, ProcessorSettings().store_path)[0]()
        events = StoreSubjectEvents(store)
    if with_ledger:
        from stream_processor.rights.export_sources import LedgerConsent
        from stream_processor.runtime.ledger_client import read_ledger
        from stream_processor.runtime.settings import Topics

        topic = Topics().consent
        office = kafka_python_auth(stack, Role.OFFICE)
        consent = LedgerConsent(lambda: read_ledger(stack.kafka_bootstrap, topic, auth=office))
    return store, events, consent


def _write(doc: SubjectExport, out: Path | None) -> None:
    text = doc.model_dump_json(indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"subject export → {out}")
    else:
        click.echo(text)
    for note in doc.unavailable:
        click.echo(f"note: {note}", err=True)


def _audited(
    audit: Audit,
    tenant: str,
    site: str,
    pseudonym: str,
    resident_id: str | None,
    reason: str | None,
    case_ref: str | None,
    with_store: bool,
    with_ledger: bool,
) -> tuple[str, ...]:
    """Write the export's audit entry (before anything is read); the parts it covers."""
    from stream_processor.errors import InvalidInput
    from stream_processor.rights.export_audit import (
        ExportRequest,
        export_parts,
        export_reason,
        subject_exported,
    )

    named_by = "resident_id" if resident_id is not None else "pseudonym"
    try:
        stated = export_reason(reason, named_by)
        request = ExportRequest(
            by=getpass.getuser(), reason=stated, case_ref=case_ref, named_by=named_by,
            parts=export_parts(reason=stated, with_store=with_store, with_ledger=with_ledger),
        )  # fmt: skip
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None
    subject_exported(audit.log, tenant=tenant, site=site, subject=pseudonym, request=request)
    return request.parts
