"""Verification of a published audit log, from the files and the public key alone.

No database, no operator service: a resident, a court or a notary runs
``facegate audit verify`` on the JSONL log, the checkpoint file (or the copy
read from Kafka), the public key and, optionally, a receipt. Every failure is
a ``Finding`` that names the entry (its ``seq`` and line) or checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from stream_processor.audit.canonical import canonical
from stream_processor.audit.checkpoint import Checkpoint, decode_checkpoint
from stream_processor.audit.commitment import opens
from stream_processor.audit.entries import GENESIS, AuditEntry, EntryType, decode_entry
from stream_processor.audit.keys import Keyring, PublicKey


@dataclass(frozen=True)
class Finding:
    """One reason the log (or a receipt) does not verify."""

    code: str
    where: str
    detail: str
    seq: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.code}: {self.detail}"


@dataclass(frozen=True)
class AnchorCheck:
    """A claim that entry ``seq`` exists with ``hash``, is of ``type``, has ``body``
    fields equal to ``body``, and that its subject commitment opens to
    ``pseudonym`` under ``salt``. Receipts turn into a list of these."""

    label: str
    seq: int
    pseudonym: str
    salt: str
    hash: str | None = None
    type: EntryType | None = None
    body: dict[str, Any] = field(default_factory=dict)
    #: The log the receipt names; must be the log the checkpoints sign.
    log_id: str | None = None


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    #: Entries after the last valid checkpoint: chained, but not yet signed.
    unsigned_tail: int = 0
    anchors_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    log_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        state = "OK" if self.ok else f"FAILED ({len(self.findings)} finding(s))"
        parts = [
            f"audit log {state}: {self.entries} entries, {self.checkpoints} checkpoints",
            f"last signed checkpoint at seq {self.last_checkpoint_seq}"
            if self.last_checkpoint_seq is not None
            else "no valid checkpoint",
            f"{self.unsigned_tail} entries after it not yet signed",
        ]
        if self.anchors_checked:
            parts.append(f"{self.anchors_checked} receipt anchors checked")
        return "; ".join(parts)


def _entry_where(seq: int | None, line: int) -> str:
    return f"entry seq={seq} (line {line})" if seq is not None else f"entry at line {line}"


def _check_checkpoints(
    lines: Iterable[bytes], ring: Keyring, report: VerifyReport
) -> dict[int, list[tuple[int, Checkpoint]]]:
    by_seq: dict[int, list[tuple[int, Checkpoint]]] = {}
    last_seq = -1
    log_ids: set[str] = set()
    for n, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\n")
        if not raw:
            continue
        report.checkpoints += 1
        where = f"checkpoint line {n}"
        try:
            cp = decode_checkpoint(raw)
        except Exception as exc:
            report.findings.append(Finding("unreadable", where, str(exc), line=n))
            continue
        where = f"checkpoint line {n} (seq={cp.seq})"
        if ring.get(cp.key_id) is None:
            report.findings.append(
                Finding("wrong_key", where, f"signed by key {cp.key_id}, not one of {ring.key_ids}")
            )
            continue
        if not cp.signature_valid(ring) or cp.line() != raw:
            report.findings.append(
                Finding("bad_signature", where, "the signature does not verify", line=n)
            )
            continue
        if cp.seq < last_seq:
            report.findings.append(
                Finding("out_of_order", where, f"covers seq {cp.seq} after one at {last_seq}")
            )
        last_seq = max(last_seq, cp.seq)
        log_ids.add(cp.log_id)
        by_seq.setdefault(cp.seq, []).append((n, cp))
    if len(log_ids) > 1:
        report.findings.append(
            Finding("mixed_logs", "checkpoints", f"checkpoints of several logs: {sorted(log_ids)}")
        )
    report.log_ids = sorted(log_ids)
    return by_seq


def verify_log(
    log_lines: Iterable[bytes],
    checkpoint_lines: Iterable[bytes],
    public: PublicKey | Keyring,
    anchors: Iterable[AnchorCheck] = (),
) -> VerifyReport:
    """Check the chain, the checkpoints against it, and any receipt anchors.

    ``public``: the operator's key, or every key it has used (a ``Keyring``)."""
    report = VerifyReport()
    checkpoints = _check_checkpoints(checkpoint_lines, Keyring.of(public), report)
    anchors_seen = list(anchors)
    wanted: dict[int, list[AnchorCheck]] = {}
    for anchor in anchors_seen:
        wanted.setdefault(anchor.seq, []).append(anchor)

    expected_seq = 0
    entry_findings_before = len(report.findings)
    anchor_findings: list[Finding] = []  # kept apart: a bad receipt says nothing of the chain
    prev_hash: str | None = GENESIS
    last_seq = -1
    last_valid_cp: int | None = None
    for n, raw in enumerate(log_lines, start=1):
        raw = raw.rstrip(b"\n")
        report.entries += 1
        try:
            entry = decode_entry(raw)
        except Exception as exc:
            report.findings.append(
                Finding("unreadable", _entry_where(None, n), f"not a valid entry: {exc}", line=n)
            )
            prev_hash = None
            expected_seq += 1
            continue
        where = _entry_where(entry.seq, n)
        if entry.seq > expected_seq:
            missing = (
                f"entry {expected_seq}"
                if entry.seq == expected_seq + 1
                else f"entries {expected_seq}..{entry.seq - 1}"
            )
            report.findings.append(
                Finding(
                    "missing_entry",
                    where,
                    f"expected seq {expected_seq}: {missing} dropped or moved",
                    seq=expected_seq,
                    line=n,
                )
            )
        elif entry.seq < expected_seq:
            report.findings.append(
                Finding(
                    "out_of_order",
                    where,
                    f"seq {entry.seq} appears after seq {expected_seq - 1}",
                    seq=entry.seq,
                    line=n,
                )
            )
        computed = entry.computed_hash(check=False)
        if computed != entry.hash:
            report.findings.append(
                Finding(
                    "hash_mismatch",
                    where,
                    "content changed after it was written",
                    seq=entry.seq,
                    line=n,
                )
            )
        elif raw != entry.line(check=False):
            report.findings.append(
                Finding(
                    "not_canonical", where, "the line's bytes were changed", seq=entry.seq, line=n
                )
            )
        if prev_hash is not None and entry.prev != prev_hash:
            report.findings.append(
                Finding(
                    "chain_broken",
                    where,
                    "prev does not match the hash of the entry before it "
                    "(that entry was changed, dropped or moved)",
                    seq=entry.seq,
                    line=n,
                )
            )
        for _, cp in checkpoints.pop(entry.seq, []):
            if cp.hash != entry.hash:
                report.findings.append(
                    Finding(
                        "checkpoint_mismatch",
                        where,
                        f"a signed checkpoint (at {cp.at_ms}) says this entry's hash is {cp.hash}",
                        seq=entry.seq,
                        line=n,
                    )
                )
            elif len(report.findings) == entry_findings_before:
                # Valid only while every entry up to here verified.
                last_valid_cp = entry.seq
        for anchor in wanted.pop(entry.seq, []):
            report.anchors_checked += 1
            anchor_findings.extend(_check_anchor(anchor, entry, n))
        prev_hash = entry.hash
        expected_seq = max(expected_seq, entry.seq + 1)
        last_seq = max(last_seq, entry.seq)

    for seq, cps in sorted(checkpoints.items()):
        for n, _ in cps:
            if seq > last_seq:
                finding = Finding(
                    "truncated",
                    f"checkpoint line {n} (seq={seq})",
                    f"the log ends at seq {last_seq} but a signed checkpoint covers seq {seq}: "
                    f"entries {last_seq + 1}..{seq} were removed",
                    seq=seq,
                )
            else:
                finding = Finding(
                    "missing_entry",
                    f"checkpoint line {n} (seq={seq})",
                    f"a signed checkpoint covers entry {seq}, which the log no longer has",
                    seq=seq,
                )
            report.findings.append(finding)
    report.findings.extend(anchor_findings)
    for seq, anchors_left in sorted(wanted.items()):
        for anchor in anchors_left:
            report.findings.append(
                Finding("anchor_missing", anchor.label, f"the log has no entry seq={seq}", seq=seq)
            )
    report.last_checkpoint_seq = last_valid_cp
    for anchor in _anchors_by_label(anchors_seen):
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
    report.unsigned_tail = last_seq - (last_valid_cp if last_valid_cp is not None else -1)
    if report.unsigned_tail > 0:
        report.warnings.append(
            f"{report.unsigned_tail} entries after the last signed checkpoint "
            "are chained but not yet signed"
        )
    return report


def _anchors_by_label(anchors: list[AnchorCheck]) -> list[AnchorCheck]:
    """One anchor per receipt (its main one: the first seen per label)."""
    seen: dict[str, AnchorCheck] = {}
    for a in anchors:
        seen.setdefault(a.label, a)
    return list(seen.values())


def _check_anchor(anchor: AnchorCheck, entry: AuditEntry, line: int) -> list[Finding]:
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


def read_lines(path: Any) -> Iterator[bytes]:
    """The lines of a published file, streamed (a log may be large)."""
    with open(path, "rb") as fh:
        yield from fh
