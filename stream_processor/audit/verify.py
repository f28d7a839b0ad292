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

from stream_processor.audit.checkpoint import Checkpoint, decode_checkpoint
from stream_processor.audit.entries import GENESIS, AuditEntry, decode_entry
from stream_processor.audit.keys import Keyring, PublicKey
from stream_processor.audit.verify_anchors import check_anchor, check_anchor_coverage
from stream_processor.audit.verify_report import AnchorCheck, Finding, VerifyReport


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
    walk = _Walk(report, checkpoints, wanted, findings_before=len(report.findings))
    for n, raw in enumerate(log_lines, start=1):
        walk.step(n, raw.rstrip(b"\n"))
    _check_unmatched_checkpoints(checkpoints, walk.last_seq, report)
    report.findings.extend(walk.anchor_findings)
    for seq, anchors_left in sorted(wanted.items()):
        for anchor in anchors_left:
            report.findings.append(
                Finding("anchor_missing", anchor.label, f"the log has no entry seq={seq}", seq=seq)
            )
    report.last_checkpoint_seq = walk.last_valid_cp
    check_anchor_coverage(anchors_seen, walk.last_valid_cp, report)
    report.unsigned_tail = walk.last_seq - (
        walk.last_valid_cp if walk.last_valid_cp is not None else -1
    )
    if report.unsigned_tail > 0:
        report.warnings.append(
            f"{report.unsigned_tail} entries after the last signed checkpoint "
            "are chained but not yet signed"
        )
    return report


@dataclass
class _Walk:
    """One pass over the log's entries, in file order."""

    report: VerifyReport
    checkpoints: dict[int, list[tuple[int, Checkpoint]]]
    wanted: dict[int, list[AnchorCheck]]
    findings_before: int
    #: Kept apart: a bad receipt says nothing of the chain.
    anchor_findings: list[Finding] = field(default_factory=list)
    expected_seq: int = 0
    prev_hash: str | None = GENESIS
    last_seq: int = -1
    last_valid_cp: int | None = None

    def step(self, n: int, raw: bytes) -> None:
        self.report.entries += 1
        try:
            entry = decode_entry(raw)
        except Exception as exc:
            self.report.findings.append(
                Finding("unreadable", _entry_where(None, n), f"not a valid entry: {exc}", line=n)
            )
            self.prev_hash = None
            self.expected_seq += 1
            return
        where = _entry_where(entry.seq, n)
        self._check_order(entry, where, n)
        self._check_content(entry, raw, where, n)
        self._check_signed(entry, where, n)
        for anchor in self.wanted.pop(entry.seq, []):
            self.report.anchors_checked += 1
            self.anchor_findings.extend(check_anchor(anchor, entry, n))
        self.prev_hash = entry.hash
        self.expected_seq = max(self.expected_seq, entry.seq + 1)
        self.last_seq = max(self.last_seq, entry.seq)

    def _check_order(self, entry: AuditEntry, where: str, n: int) -> None:
        expected = self.expected_seq
        if entry.seq > expected:
            missing = (
                f"entry {expected}"
                if entry.seq == expected + 1
                else f"entries {expected}..{entry.seq - 1}"
            )
            detail = f"expected seq {expected}: {missing} dropped or moved"
            self.report.findings.append(
                Finding("missing_entry", where, detail, seq=expected, line=n)
            )
        elif entry.seq < expected:
            detail = f"seq {entry.seq} appears after seq {expected - 1}"
            self.report.findings.append(
                Finding("out_of_order", where, detail, seq=entry.seq, line=n)
            )

    def _check_content(self, entry: AuditEntry, raw: bytes, where: str, n: int) -> None:
        def bad(code: str, detail: str) -> None:
            self.report.findings.append(Finding(code, where, detail, seq=entry.seq, line=n))

        if entry.computed_hash(check=False) != entry.hash:
            bad("hash_mismatch", "content changed after it was written")
        elif raw != entry.line(check=False):
            bad("not_canonical", "the line's bytes were changed")
        if self.prev_hash is not None and entry.prev != self.prev_hash:
            bad(
                "chain_broken",
                "prev does not match the hash of the entry before it "
                "(that entry was changed, dropped or moved)",
            )

    def _check_signed(self, entry: AuditEntry, where: str, n: int) -> None:
        for _, cp in self.checkpoints.pop(entry.seq, []):
            if cp.hash != entry.hash:
                detail = f"a signed checkpoint (at {cp.at_ms}) says this entry's hash is {cp.hash}"
                self.report.findings.append(
                    Finding("checkpoint_mismatch", where, detail, seq=entry.seq, line=n)
                )
            elif len(self.report.findings) == self.findings_before:
                # Valid only while every entry up to here verified.
                self.last_valid_cp = entry.seq


def _check_unmatched_checkpoints(
    checkpoints: dict[int, list[tuple[int, Checkpoint]]], last_seq: int, report: VerifyReport
) -> None:
    """Checkpoints over entries the log did not show: cut off at the end, or dropped."""
    for seq, cps in sorted(checkpoints.items()):
        for n, _ in cps:
            where = f"checkpoint line {n} (seq={seq})"
            if seq > last_seq:
                detail = (
                    f"the log ends at seq {last_seq} but a signed checkpoint covers seq {seq}: "
                    f"entries {last_seq + 1}..{seq} were removed"
                )
                report.findings.append(Finding("truncated", where, detail, seq=seq))
            else:
                detail = f"a signed checkpoint covers entry {seq}, which the log no longer has"
                report.findings.append(Finding("missing_entry", where, detail, seq=seq))


def read_lines(path: Any) -> Iterator[bytes]:
    """The lines of a published file, streamed (a log may be large)."""
    with open(path, "rb") as fh:
        yield from fh


# The report's types: re-exported for the CLI, web, rights and witness modules.
__all__ = ["AnchorCheck", "Finding", "VerifyReport", "read_lines", "verify_log"]
