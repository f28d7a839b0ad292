"""Receipt anchors checked against the log: the entry a receipt names, and whether a signed
checkpoint covers it."""

from __future__ import annotations

from stream_processor.audit.canonical import canonical
from stream_processor.audit.commitment import opens
from stream_processor.audit.entries import AuditEntry
from stream_processor.audit.verify_report import AnchorCheck, Finding, VerifyReport


def check_anchor_coverage(
    anchors: list[AnchorCheck], last_valid_cp: int | None, report: VerifyReport
) -> None:
    for anchor in anchors_by_label(anchors):
        if anchor.log_id is not None and report.log_ids and anchor.log_id not in report.log_ids:
            report.findings.append(
                Finding(
                    "anchor_log",
                    anchor.label,
                    f"names log {anchor.log_id!r}; the checkpoints sign {report.log_ids}",
                    seq=anchor.seq,
                )
            )
        if last_valid_cp is None or anchor.seq > last_valid_cp:
            report.warnings.append(
                f"{anchor.label}: entry {anchor.seq} is not yet covered by a signed checkpoint"
            )


def anchors_by_label(anchors: list[AnchorCheck]) -> list[AnchorCheck]:
    """One anchor per receipt (its main one: the first seen per label)."""
    seen: dict[str, AnchorCheck] = {}
    for a in anchors:
        seen.setdefault(a.label, a)
    return list(seen.values())


def check_anchor(anchor: AnchorCheck, entry: AuditEntry, line: int) -> list[Finding]:
    where = f"{anchor.label} → entry seq={entry.seq} (line {line})"
    out: list[Finding] = []

    def bad(code: str, detail: str) -> None:
        out.append(Finding(code, where, detail, seq=entry.seq, line=line))

    if anchor.hash is not None and anchor.hash != entry.hash:
        bad("anchor_hash", f"receipt says hash {anchor.hash}, the log has {entry.hash}")
    if anchor.type is not None and anchor.type != entry.type:
        bad("anchor_type", f"receipt expects a {anchor.type} entry, found {entry.type}")
    for key, value in anchor.body.items():
        found = entry.body.get(key)
        if canonical(found) != canonical(value):
            bad("anchor_body", f"{key}: receipt has {value!r}, the log has {found!r}")
    if entry.subject is None or not opens(entry.subject, anchor.pseudonym, anchor.salt):
        bad("anchor_subject", "the subject commitment does not open to the receipt's subject")
    return out


__all__ = ["anchors_by_label", "check_anchor", "check_anchor_coverage"]
