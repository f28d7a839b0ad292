"""``facegate subject export``: everything held about one subject, as JSON."""

from __future__ import annotations

from pathlib import Path

import click

from stream_processor.cli.options import place_options, require_subject, subject_options
from stream_processor.runtime.settings import BrokerSettings


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
    out: Path | None,
    with_store: bool,
    with_ledger: bool,
) -> None:
    """Write the subject access export (JSON)."""
    from stream_processor.audit.wiring import open_audit
    from stream_processor.errors import FacegateError
    from stream_processor.rights.db import open_rights_db, rights_db_path
    from stream_processor.rights.export import build_export
    from stream_processor.rights.keycards import KeycardBook
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.rights.receipts import ErasureReceipt

    pseudonym = require_subject(subject, resident_id, site_secret)
    stack = BrokerSettings()
    state = stack.state_dir
    audit = open_audit(state)
    db = open_rights_db(rights_db_path(state))
    store = None
    events = consent = None
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
        consent = LedgerConsent(lambda: read_ledger(stack.kafka_bootstrap, topic))
    from stream_processor.erasure.book import ErasureBook
    from stream_processor.erasure.settings import ErasureSettings

    erasure_db_path = ErasureSettings().db_path
    erasure_db = open_rights_db(erasure_db_path) if erasure_db_path else db
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
    text = doc.model_dump_json(indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"subject export → {out}")
    else:
        click.echo(text)
    for note in doc.unavailable:
        click.echo(f"note: {note}", err=True)
