"""Key-card requests of the token's tenant (operator): list, open one, fulfil, cancel.

The tenant always comes from the token; a request id of another tenant answers
404 as if it did not exist. Pseudonyms never leave through this API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from edge_agent.wire.events import PSEUDONYM_PATTERN
from edge_agent.wire.topics import ID_PATTERN
from stream_processor.rights.keycards import KeycardError, KeycardRequest, KeycardStatus
from stream_processor.web.api.console import registry_sites
from stream_processor.web.api.spec import Call, Page, Strict, operation
from stream_processor.web.errors import ApiError
from stream_processor.web.tokens import Role

REQUEST_ID = r"[A-Za-z0-9-]{1,64}"


class KeycardQuery(Page):
    status: Literal["open", "fulfilled", "cancelled"] | None = Field(
        None, description="only requests in this state"
    )
    site: str | None = Field(None, pattern=ID_PATTERN, description="only this site")


class KeycardCreate(Strict):
    site: str = Field(pattern=ID_PATTERN, description="the site the card is for")
    unit: str | None = Field(None, max_length=120, description="the resident's unit")
    contact: str | None = Field(None, max_length=120, description="how to reach the resident")
    subject: str | None = Field(
        None, pattern=PSEUDONYM_PATTERN, description="pseudonym of an enrolled resident"
    )
    card_only: bool = Field(True, description="the resident wants no face recognition at all")


class KeycardFulfil(Strict):
    card_ref: str | None = Field(None, max_length=120, description="the card's number")


class KeycardCancel(Strict):
    note: str = Field(min_length=1, max_length=120, description="why (the resident withdrew)")
    reason: Literal["resident_withdrew", "moved_out", "duplicate", "entered_in_error"] = Field(
        "resident_withdrew", description="why, as written to the audit log"
    )


class KeycardOut(BaseModel):
    id: str
    site: str
    status: str
    channel: str
    card_only: bool
    unit: str | None
    contact: str | None
    enrolled_subject: bool = Field(description="the request names an enrolled resident")
    requested_at_ms: int
    closed_at_ms: int | None
    age_s: float
    card_ref: str | None


class OpenSite(BaseModel):
    site: str
    open: int
    oldest_age_s: float


class KeycardList(BaseModel):
    requests: list[KeycardOut]
    next_offset: int | None = Field(description="offset of the next page; null at the end")
    open: list[OpenSite] = Field(description="open requests per site and the oldest's age")


def _out(req: KeycardRequest, now_ms: int) -> KeycardOut:
    doc = req.public_doc(now_ms)
    doc.pop("tenant")
    return KeycardOut.model_validate(doc)


def _own(call: Call, request_id: str) -> KeycardRequest:
    try:
        req = call.deps.keycards.get(request_id)
    except KeycardError:
        req = None
    if req is None or req.tenant != call.tenant:
        raise ApiError(404, "not_found", f"no key-card request {request_id}")
    return req


def _now(call: Call) -> int:
    return int(call.deps.clock() * 1000)


@operation(
    "GET",
    "/api/v1/keycards",
    role=Role.OPERATOR,
    tag="rights",
    query=KeycardQuery,
    response=KeycardList,
    summary="Key-card requests and open requests per site",
)
async def list_keycards(call: Call) -> KeycardList:
    q: KeycardQuery = call.query
    wanted = KeycardStatus(q.status) if q.status else None
    rows = call.deps.keycards.find(wanted, call.tenant, q.site)
    page = rows[q.offset : q.offset + q.limit]
    now = _now(call)
    summary = [
        OpenSite(site=s.site, open=s.open, oldest_age_s=round(s.oldest_age_s, 1))
        for s in call.deps.keycards.open_summary()
        if s.tenant == call.tenant
    ]
    more = q.offset + q.limit if q.offset + q.limit < len(rows) else None
    return KeycardList(requests=[_out(r, now) for r in page], next_offset=more, open=summary)


@operation(
    "POST",
    "/api/v1/keycards",
    role=Role.OPERATOR,
    tag="rights",
    body=KeycardCreate,
    response=KeycardOut,
    status=201,
    summary="Record a key-card request (office channel: api)",
)
async def create_keycard(call: Call) -> KeycardOut:
    b: KeycardCreate = call.body
    if b.site not in registry_sites(call.deps, call.tenant):
        raise ApiError(404, "not_found", f"no site {b.site}")
    try:
        req = call.deps.keycards.request(
            call.tenant,
            b.site,
            channel="api",
            unit=b.unit,
            contact=b.contact,
            subject=b.subject,
            card_only=b.card_only,
        )
    except KeycardError as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    return _out(req, _now(call))


async def _close(call: Call, fulfil: bool) -> KeycardOut:
    req = _own(call, call.path("id"))
    try:
        if fulfil:
            done = call.deps.keycards.fulfil(req.id, call.body.card_ref)
        else:
            done = call.deps.keycards.cancel(req.id, call.body.note, call.body.reason)
    except KeycardError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return _out(done, _now(call))


@operation(
    "POST",
    "/api/v1/keycards/{id:" + REQUEST_ID + "}/fulfil",
    role=Role.OPERATOR,
    tag="rights",
    body=KeycardFulfil,
    response=KeycardOut,
    summary="A card was handed over",
)
async def fulfil_keycard(call: Call) -> KeycardOut:
    return await _close(call, True)


@operation(
    "POST",
    "/api/v1/keycards/{id:" + REQUEST_ID + "}/cancel",
    role=Role.OPERATOR,
    tag="rights",
    body=KeycardCancel,
    response=KeycardOut,
    summary="The resident withdrew",
)
async def cancel_keycard(call: Call) -> KeycardOut:
    return await _close(call, False)
