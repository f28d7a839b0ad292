"""Subject access is audited and narrow (pure rules and the entry they write).

Every subject export writes a ``subject_exported`` entry before anything is
read: who ran it, the stated reason, the case it belongs to, what it named the
subject by and which parts it includes — the subject only as the log's salted
commitment. Reasons come from a fixed list (the console's subject view uses
the same one): the log is public, and free text is where a name slips in.

A per-person history (the gate-by-gate stored events) goes only into the
subject's own export (reason ``access_request``); an export for any other
reason leaves it out and says so. The privacy officer reads histories in the
console's subject view, which is audited the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from stream_processor.audit.entries import EntryType
from stream_processor.audit.log import Appended, AuditSink
from stream_processor.errors import InvalidInput

#: Why a subject's data is looked at; the same list as the console's subject view.
REASONS = ("access_request", "erasure_request", "consent_question", "complaint",
           "legal_obligation")  # fmt: skip
#: The subject asked for their own data: the only export that carries their history.
OWN_EXPORT = "access_request"
CASE_REF = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HISTORY_WITHHELD = (
    "stored_events: a per-person history goes only into the subject's own export "
    f"(--reason {OWN_EXPORT}) or to the privacy officer's subject view"
)


@dataclass(frozen=True)
class ExportRequest:
    """Who asks for a subject export, why, and what it reads."""

    by: str
    reason: str
    case_ref: str | None
    named_by: str  # "pseudonym" | "resident_id"
    parts: tuple[str, ...]
    channel: str = "cli"

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise InvalidInput(f"reason must be one of {', '.join(REASONS)}")
        if self.case_ref is not None and not CASE_REF.fullmatch(self.case_ref):
            raise InvalidInput("case reference must match [A-Za-z0-9._:-]{1,64}")
        if self.named_by not in ("pseudonym", "resident_id"):
            raise InvalidInput("a subject is named by pseudonym or resident_id")


def export_reason(reason: str | None, named_by: str) -> str:
    """The stated reason; an export by resident id must state one."""
    if reason is None:
        if named_by == "resident_id":
            raise InvalidInput(
                "an export by --resident-id needs --reason (written to the audit log): "
                + ", ".join(REASONS)
            )
        return OWN_EXPORT
    return reason


def history_allowed(reason: str) -> bool:
    """Only the subject's own export carries their per-person history."""
    return reason == OWN_EXPORT


def export_parts(*, reason: str, with_store: bool, with_ledger: bool) -> tuple[str, ...]:
    """The parts an export reads, in the order of the document."""
    parts = ["stored_events"] if with_store and history_allowed(reason) else []
    parts += ["consent_history"] if with_ledger else []
    return (*parts, "pending_erasures", "receipts", "keycard_requests", "audit_entries")


def subject_exported(
    sink: AuditSink, *, tenant: str, site: str, subject: str, request: ExportRequest
) -> Appended:
    """The audit entry of one export; ``subject`` is written only as a commitment."""
    body: dict[str, object] = {
        "by": request.by,
        "reason": request.reason,
        "case_ref": request.case_ref,
        "named_by": request.named_by,
        "scope": list(request.parts),
        "channel": request.channel,
    }
    return sink.append(
        EntryType.SUBJECT_EXPORTED, tenant=tenant, site=site, subject=subject, body=body
    )


def parts_note(parts: Sequence[str], with_store: bool) -> list[str]:
    """What the export says about a history it withheld."""
    return [HISTORY_WITHHELD] if with_store and "stored_events" not in parts else []
