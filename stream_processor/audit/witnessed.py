"""Verification of the C2SP checkpoints against the published log, and of their cosignatures.

For each signed checkpoint (origin, size, root): the operator's signature, and
that the RFC 6962 root of the log's first ``size`` lines is ``root``. A log
rebuilt without an entry has other roots, so every checkpoint a witness
cosigned before the rewrite fails, and the witness never cosigns the new one:
with ``require ≥ 1`` the rewritten log fails either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stream_processor.audit.keys import Keyring, PublicKey
from stream_processor.audit.merkle import Frontier, leaf_hash
from stream_processor.audit.note import ED25519, Note, Verifier, valid_signatures
from stream_processor.audit.tlog import CheckpointStore, TreeHead
from stream_processor.audit.verify import Finding


@dataclass(frozen=True)
class Cosigned:
    """A checkpoint that matched the log, and who cosigned it (name, unix time)."""

    size: int
    witnesses: tuple[tuple[str, int], ...]


@dataclass
class WitnessReport:
    checkpoints: int = 0
    #: Largest checkpoint matching the log with at least ``require`` valid cosignatures.
    witnessed: Cosigned | None = None
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.witnessed is None:
            return f"{self.checkpoints} C2SP checkpoint(s); none witnessed"
        names = ", ".join(sorted({n for n, _ in self.witnessed.witnesses})) or "no witness"
        return (
            f"{self.checkpoints} C2SP checkpoint(s); entries 0..{self.witnessed.size - 1} "
            f"witnessed by {names}"
        )


def operator_verifiers(keys: PublicKey | Keyring, origin: str) -> list[Verifier]:
    return [Verifier(origin, ED25519, k.key) for k in Keyring.of(keys).keys]


def verify_witnessed(
    log_lines: Iterable[bytes],
    notes: Iterable[Note],
    operator: PublicKey | Keyring,
    witnesses: list[Verifier],
    require: int = 0,
    origin: str | None = None,
) -> WitnessReport:
    """Check every note against the log; ``require`` cosignatures (by distinct keys
    among ``witnesses``) make a checkpoint witnessed. ``origin``: the log id expected."""
    report = WitnessReport()
    wanted: dict[int, list[tuple[Note, TreeHead]]] = {}
    for note in notes:
        report.checkpoints += 1
        head = TreeHead.parse(note.text)
        where = f"checkpoint {head.origin} size {head.size}"
        if origin is not None and head.origin != origin:
            report.findings.append(Finding("wrong_origin", where, f"not of log {origin!r}"))
            continue
        if not valid_signatures(note, operator_verifiers(operator, head.origin)):
            report.findings.append(Finding("bad_signature", where, "not signed by an operator key"))
            continue
        wanted.setdefault(head.size, []).append((note, head))
    frontier = Frontier()
    best: Cosigned | None = None
    roots: dict[int, bytes] = {}
    if 0 in wanted:
        roots[0] = frontier.root()
    for raw in log_lines:
        frontier.add(leaf_hash(raw.rstrip(b"\n")))
        if frontier.size in wanted:
            roots[frontier.size] = frontier.root()
    for size, items in sorted(wanted.items()):
        for note, head in items:
            where = f"checkpoint {head.origin} size {size}"
            if size not in roots:
                report.findings.append(
                    Finding(
                        "truncated",
                        where,
                        f"the log has {frontier.size} entries; entries {frontier.size}.."
                        f"{size - 1} were removed",
                    )
                )
                continue
            if roots[size] != head.root:
                report.findings.append(
                    Finding(
                        "tree_mismatch",
                        where,
                        "the log's first entries do not hash to the signed root: "
                        "it was rewritten after this checkpoint was signed",
                    )
                )
                continue
            cosigs = valid_signatures(note, witnesses)
            if cosigs and len(cosigs) >= max(require, 1):
                best = Cosigned(size, tuple((v.name, t) for v, t in cosigs))
    report.witnessed = best
    if require > 0 and best is None:
        report.findings.append(
            Finding(
                "not_witnessed",
                "log",
                f"no checkpoint matching the log carries {require} cosignature(s) "
                "from the given witness keys",
            )
        )
    elif best is not None and best.size < frontier.size:
        report.warnings.append(
            f"{frontier.size - best.size} entries after the last witnessed checkpoint "
            "are not yet witnessed"
        )
    return report


def published_notes(store_path: Path) -> list[Note]:
    """The checkpoints a log publishes: every cosigned one and the latest."""
    if not store_path.exists():
        return []
    store = CheckpointStore(store_path)
    try:
        notes = {TreeHead.parse(n.text).size: n for n in store.cosigned()}
        latest = store.latest()
        if latest is not None:
            notes.setdefault(TreeHead.parse(latest.text).size, latest)
        return [notes[k] for k in sorted(notes)]
    finally:
        store.close()
