"""What a verification of the audit log reports: findings, warnings, the claims it checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream_processor.audit.entries import EntryType


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


__all__ = ["AnchorCheck", "Finding", "VerifyReport"]
