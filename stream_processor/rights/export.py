"""The subject access export: everything held about one subject, as one JSON document.

Parts that live in other components (stored events, the consent ledger,
pending erasures) come through small ports. A part whose source is not given
(the CLI's ``--no-store``/``--no-ledger``) is listed in ``unavailable``
rather than silently empty.

Audit entries about the subject are found through the operator's opening
index and through any receipts the subject brings (after an erasure the
operator has forgotten the openings; only the receipt holder can link them),
and each comes with the salt that opens its commitment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from stream_processor.audit.commitment import opens
from stream_processor.audit.entries import AuditEntry
from stream_processor.audit.openings import Openings
from stream_processor.rights.keycards import KeycardBook
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import ErasureReceipt

FORMAT = "facegate.subject-export/1"


class SubjectEvents(Protocol):
    """Issue 5's store: the subject's stored events as plain dicts."""

    def events_for_subject(
        self, tenant: str, site: str, subject: str
    ) -> Sequence[Mapping[str, Any]]: ...


class ConsentHistory(Protocol):
    """Issue 5's consent ledger: every record of the subject, oldest first."""

    def consent_history(
        self, tenant: str, site: str, subject: str
    ) -> Sequence[Mapping[str, Any]]: ...


class PendingErasures(Protocol):
    """The erasure flow: requests of the subject not yet completed, with their status."""

    def pending_for_subject(
        self, tenant: str, site: str, subject: str
    ) -> Sequence[Mapping[str, Any]]: ...


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenedEntry(_Model):
    seq: int = Field(description="position in the audit log")
    hash: str = Field(description="the entry's hash")
    type: str = Field(description="what happened")
    at_ms: int = Field(description="when it was logged")
    body: dict[str, Any] = Field(description="the entry's facts")
    salt: str = Field(description="opens the entry's subject commitment to you")


class SubjectExport(_Model):
    format: Literal["facegate.subject-export/1"] = Field(description="document format")
    generated_at_ms: int = Field(description="when this export was made")
    tenant: str = Field(description="the property firm")
    site: str = Field(description="the site")
    subject: str = Field(description="your per-site pseudonym")
    stored_events: list[dict[str, Any]] = Field(description="events stored about you")
    consent_history: list[dict[str, Any]] = Field(description="your consent records")
    pending_erasures: list[dict[str, Any]] = Field(description="erasures still in progress")
    receipts: list[ErasureReceipt] = Field(description="signed receipts of completed erasures")
    keycard_requests: list[dict[str, Any]] = Field(description="your key-card requests")
    audit_entries: list[OpenedEntry] = Field(description="audit-log entries about you")
    unavailable: list[str] = Field(description="parts this installation could not include")


def opened_entries(
    entries: Iterable[AuditEntry], subject: str, salts: Mapping[int, str]
) -> list[OpenedEntry]:
    """The entries at the given positions whose commitment opens to ``subject``."""
    out: list[OpenedEntry] = []
    for entry in entries:
        salt = salts.get(entry.seq)
        if salt is None or entry.subject is None or not opens(entry.subject, subject, salt):
            continue
        out.append(
            OpenedEntry(
                seq=entry.seq,
                hash=entry.hash,
                type=entry.type.value,
                at_ms=entry.at_ms,
                body=dict(entry.body),
                salt=salt,
            )
        )
    return out


def build_export(
    tenant: str,
    site: str,
    subject: str,
    *,
    audit_entries: Iterable[AuditEntry],
    openings: Openings | None,
    keycards: KeycardBook,
    receipts: ReceiptStore | None,
    brought_receipts: Sequence[ErasureReceipt] = (),
    events: SubjectEvents | None = None,
    consent: ConsentHistory | None = None,
    pending: PendingErasures | None = None,
    withheld: Sequence[str] = (),
    clock: Callable[[], float] = time.time,
) -> SubjectExport:
    """``withheld``: why parts were left out on purpose (they replace "not read")."""
    unavailable: list[str] = list(withheld)
    known = {r.claims.request_id: r for r in (receipts.for_subject(subject) if receipts else [])}
    for r in brought_receipts:
        if r.claims.subject == subject:
            known.setdefault(r.claims.request_id, r)
    salts: dict[int, str] = {}
    if openings is not None:
        salts.update((o.seq, o.salt) for o in openings.for_subject(subject))
    for r in known.values():
        salts[r.audit.seq] = r.audit.salt
        salts.update((o.seq, o.salt) for o in r.openings)
    if events is None and not any(w.startswith("stored_events") for w in withheld):
        unavailable.append("stored_events: the event store was not read for this export")
    if consent is None:
        unavailable.append("consent_history: the consent ledger was not read for this export")
    if pending is None:
        unavailable.append("pending_erasures: the erasure book was not read for this export")
    now_ms = int(clock() * 1000)
    return SubjectExport(
        format=FORMAT,
        generated_at_ms=now_ms,
        tenant=tenant,
        site=site,
        subject=subject,
        stored_events=[dict(e) for e in events.events_for_subject(tenant, site, subject)]
        if events
        else [],
        consent_history=[dict(c) for c in consent.consent_history(tenant, site, subject)]
        if consent
        else [],
        pending_erasures=[dict(p) for p in pending.pending_for_subject(tenant, site, subject)]
        if pending
        else [],
        receipts=sorted(known.values(), key=lambda r: r.claims.completed_at_ms),
        keycard_requests=[
            r.public_doc(now_ms)
            for r in keycards.for_subject(subject)
            if r.tenant == tenant and r.site == site
        ],
        audit_entries=opened_entries(audit_entries, subject, salts),
        unavailable=unavailable,
    )
