"""The subject view (privacy officer): one resident's stored events and key-card requests
at one site, looked up by pseudonym — and an audit entry for every look.

The entry names the officer's token label, a reason from a fixed list and a case
reference; the published audit log then shows who looked, why and when, and
commits to the subject without naming them. Free text is refused: the log is
public, and a typed sentence is where a name would slip in.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from edge_agent.wire.events import PSEUDONYM_PATTERN
from edge_agent.wire.topics import ID_PATTERN
from stream_processor.audit.entries import EntryType
from stream_processor.web.api.console import registry_sites
from stream_processor.web.api.spec import Strict
from stream_processor.web.auth import Principal
from stream_processor.web.deps import WebDeps
from stream_processor.web.errors import ApiError

Reason = Literal[
    "access_request", "erasure_request", "consent_question", "complaint", "legal_obligation"
]
REASONS: tuple[str, ...] = Reason.__args__  # type: ignore[attr-defined]


class SubjectLookup(Strict):
    site: str = Field(pattern=ID_PATTERN, description="the site the pseudonym belongs to")
    subject: str = Field(pattern=PSEUDONYM_PATTERN, description="the resident's pseudonym")
    reason: Reason = Field(description="why the officer looks (written to the audit log)")
    case_ref: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="the case or ticket this look belongs to"
    )


class SubjectEvent(BaseModel):
    occurred_at_ms: int
    gate: str
    kind: str
    decision: str
    purpose: str
    expires_at_ms: int | None


class SubjectKeycard(BaseModel):
    id: str
    status: str
    requested_at_ms: int


class SubjectView(BaseModel):
    site: str
    events: list[SubjectEvent]
    keycards: list[SubjectKeycard]
    audit_seq: int = Field(description="the audit entry this look wrote")


def look_up(deps: WebDeps, principal: Principal, q: SubjectLookup) -> SubjectView:
    if q.site not in registry_sites(deps, principal.tenant):
        raise ApiError(404, "not_found", f"no site {q.site}")
    if deps.audit is None:
        raise ApiError(503, "unavailable", "no audit log: the subject view is off")
    # Audited before anything is read: a look that fails half-way is still on record.
    appended = deps.audit.append(
        EntryType.SUBJECT_VIEWED, tenant=principal.tenant, site=q.site, subject=q.subject,
        body={"by": principal.token.label, "token": principal.token.id, "reason": q.reason,
              "case_ref": q.case_ref},
    )  # fmt: skip
    rows = deps.store.events_of_subject(principal.tenant, q.site, q.subject) if deps.store else []
    cards = [
        SubjectKeycard(id=k.id, status=k.status.value, requested_at_ms=k.requested_at_ms)
        for k in deps.keycards.for_subject(q.subject)
        if k.tenant == principal.tenant and k.site == q.site
    ]
    return SubjectView(
        site=q.site,
        events=[
            SubjectEvent(
                occurred_at_ms=r.occurred_at_ms,
                gate=r.gate,
                kind=r.kind,
                decision=r.decision,
                purpose=r.purpose,
                expires_at_ms=r.expires_at_ms,
            )
            for r in rows
        ],  # fmt: skip
        keycards=cards,
        audit_seq=appended.entry.seq,
    )
