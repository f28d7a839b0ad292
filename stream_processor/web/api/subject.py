"""The subject view over the API (privacy officer; POST: it writes an audit entry, and a
pseudonym never goes into a URL or an access log)."""

from __future__ import annotations

from stream_processor.web.api.spec import Call, operation
from stream_processor.web.subject import SubjectLookup, SubjectView, look_up
from stream_processor.web.tokens import Role


@operation(
    "POST", "/api/v1/subjects/lookup", role=Role.PRIVACY_OFFICER, tag="rights",
    body=SubjectLookup, response=SubjectView,
    summary="One resident's stored events and key-card requests at a site (audited)",
)  # fmt: skip
async def subject_lookup(call: Call) -> SubjectView:
    return look_up(call.deps, call.principal, call.body)
