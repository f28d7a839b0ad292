"""What ``facegate audit`` does with witnesses: verify their cosignatures, ask them.

Helpers of the audit commands (cli/audit.py), kept apart to keep that file short.
"""

from __future__ import annotations

from pathlib import Path

import click

from stream_processor.audit.keys import Keyring
from stream_processor.audit.verify import VerifyReport
from stream_processor.audit.wiring import Audit
from stream_processor.audit.witnessed import WitnessReport
from stream_processor.rights.receipts import ErasureReceipt


def verify_witnessing(
    log_file: Path,
    note_files: tuple[Path, ...] | None,
    store_path: Path,
    public: Keyring,
    witness_keys: tuple[str, ...],
    require: int,
    report: VerifyReport,
    receipts: list[ErasureReceipt],
) -> WitnessReport:
    """The C2SP checkpoints against the log, their cosignatures, and receipts' proofs;
    adds what fails to ``report``."""
    from stream_processor.audit.note import Note, NoteError, Verifier
    from stream_processor.audit.verify import Finding, read_lines
    from stream_processor.audit.witnessed import published_notes, verify_witnessed
    from stream_processor.rights.receipt_proof import check_witnessed

    try:
        witnesses = [Verifier.parse(k) for k in witness_keys]
        if note_files is None:
            notes = published_notes(store_path)
        else:
            notes = [Note.parse(p.read_bytes()) for p in note_files]
        # A receipt's cosigned checkpoint must match the log as much as the published ones.
        notes += [Note.parse(r.witnessed.checkpoint) for r in receipts if r.witnessed]
    except NoteError as exc:
        raise click.ClickException(str(exc)) from None
    origin = report.log_ids[0] if len(report.log_ids) == 1 else None
    out = verify_witnessed(read_lines(log_file), notes, public, witnesses, require, origin)
    report.findings.extend(out.findings)
    report.warnings.extend(out.warnings)
    witnessed_size = out.witnessed.size if out.witnessed else 0
    for receipt in receipts:
        label = f"receipt {receipt.claims.request_id}"
        if receipt.witnessed is not None and witnesses:
            check = check_witnessed(receipt, public, witnesses, max(require, 1))
            report.findings.extend(Finding("receipt_witness", label, p) for p in check.problems)
            if check.ok:
                names = ", ".join(sorted({n for n, _ in check.witnesses}))
                report.warnings.append(f"{label}: its own proof is witnessed by {names}")
                continue
        if require > 0 and receipt.audit.seq >= witnessed_size:
            report.findings.append(
                Finding("receipt_not_witnessed", label, "no witnessed checkpoint covers it")
            )
    return out


def ask_witnesses(a: Audit, state_dir: Path) -> None:
    """Ask the push witnesses to cosign, then give kept receipts their witnessed proof."""
    from stream_processor.audit.note import Verifier
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.receipt_proof import witness_stored
    from stream_processor.rights.receipt_store import ReceiptStore

    for url, why in a.request_cosignatures().items():
        click.echo(f"witness {url}: " + ("cosigned" if why is None else f"refused: {why}"))
    witnesses = [Verifier.parse(k) for k in a.settings.witness_keys]
    if not witnesses:
        return
    db = connect_rights_db(state_dir)
    try:
        n = witness_stored(ReceiptStore(db), a.tree, a.checkpoints, witnesses)
    finally:
        db.close()
    if n:
        click.echo(f"{n} receipt(s) now carry their witnessed proof")
