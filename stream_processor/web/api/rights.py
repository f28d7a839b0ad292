"""Erasure requests and receipts (privacy officer), camera notices (operator), dead letters
by reason (viewer) — of the token's tenant only, with no pseudonym."""

from __future__ import annotations

from pydantic import BaseModel, Field

from stream_processor.errors import FacegateError
from stream_processor.notices.view import notice_url
from stream_processor.web.api.spec import Call, Page, operation
from stream_processor.web.dead_letters import DeadLetterReport
from stream_processor.web.erasures import ErasureSummary, WithdrawalSummary
from stream_processor.web.errors import ApiError
from stream_processor.web.tokens import Role


class NoticeRow(BaseModel):
    site: str
    camera: str
    gate: str
    face_recognition: bool
    url: str
    version: int | None
    since_ms: int | None


class NoticeList(BaseModel):
    notices: list[NoticeRow]
    next_offset: int | None


@operation(
    "GET",
    "/api/v1/erasures",
    role=Role.PRIVACY_OFFICER,
    tag="rights",
    query=Page,
    response=ErasureSummary,
    summary="Erasure requests and receipts: pending, overdue against the SLA, time to complete",
)
async def erasures(call: Call) -> ErasureSummary:
    if call.deps.erasures is None:
        raise ApiError(503, "unavailable", "no rights database configured")
    q: Page = call.query
    now = int(call.deps.clock() * 1000)
    return call.deps.erasures.of_tenant(
        call.tenant, now, call.deps.erasure_sla_s, q.offset, q.limit
    )


@operation(
    "GET",
    "/api/v1/withdrawals",
    role=Role.PRIVACY_OFFICER,
    tag="rights",
    query=Page,
    response=WithdrawalSummary,
    summary="Consent withdrawals some gate has not acknowledged: pending, overdue past the "
    "alarm bound, the gates still owing them",
)
async def withdrawals(call: Call) -> WithdrawalSummary:
    if call.deps.erasures is None:
        raise ApiError(503, "unavailable", "no rights database configured")
    q: Page = call.query
    now = int(call.deps.clock() * 1000)
    return call.deps.erasures.withdrawals_of(
        call.tenant, now, call.deps.withdrawal_alarm_s, q.offset, q.limit
    )


@operation(
    "GET",
    "/api/v1/notices",
    role=Role.OPERATOR,
    tag="notices",
    query=Page,
    response=NoticeList,
    summary="Every registry camera with its notice page and version",
)
async def notices(call: Call) -> NoticeList:
    q: Page = call.query
    try:
        sites = [s for s in call.deps.cameras.get().sites if s.tenant == call.tenant]
    except FacegateError as exc:
        raise ApiError(503, "unavailable", f"camera registry unreadable: {exc}") from exc
    rows = []
    for s in sites:
        for c in s.cameras:
            v = call.deps.archive.latest(call.tenant, s.site, c.id)
            rows.append(
                NoticeRow(
                    site=s.site,
                    camera=c.id,
                    gate=c.gate,
                    face_recognition=c.face_recognition,
                    url=notice_url(call.deps.public_url, call.tenant, s.site, c.id),
                    version=v.version if v else None,
                    since_ms=v.since_ms if v else None,
                )
            )
    more = q.offset + q.limit if q.offset + q.limit < len(rows) else None
    return NoticeList(notices=rows[q.offset : q.offset + q.limit], next_offset=more)


class DeadLetterQuery(Page):
    hours: int = Field(24, ge=1, le=168, description="window, in hours (the topic keeps 7 d)")


@operation(
    "GET",
    "/api/v1/dead-letters",
    role=Role.VIEWER,
    tag="rights",
    query=DeadLetterQuery,
    response=DeadLetterReport,
    summary="Refused input of the firm's devices by reason, per hour",
)
async def dead_letters(call: Call) -> DeadLetterReport:
    q: DeadLetterQuery = call.query
    return call.deps.dead_letters.report(call.tenant, int(call.deps.clock() * 1000), q.hours)
