"""Open key-card requests (operator): who waits, for how long, and hand over a card.

Unit and contact are shown because the operator needs them to hand the card
over; they are forgotten after the request closes (``keycard_contact_retention_days``).
"""

from __future__ import annotations

from aiohttp import web

from stream_processor.notices.config import Lang
from stream_processor.rights.keycards import KeycardError, KeycardStatus
from stream_processor.web.auth import require
from stream_processor.web.deps import DEPS
from stream_processor.web.errors import ApiError
from stream_processor.web.pages.layout import e, pick_lang, shell
from stream_processor.web.tokens import Role

WORDS = {
    "title": ("待办门卡申请", "Open key-card requests"),
    "site": ("小区", "Site"),
    "unit": ("房号", "Unit"),
    "contact": ("联系方式", "Contact"),
    "waiting": ("已等待", "Waiting"),
    "card": ("卡号", "Card number"),
    "fulfil": ("已发卡", "Card handed over"),
    "none": ("没有待办申请。", "No open requests."),
}


def w(key: str, lang: Lang) -> str:
    zh, en = WORDS[key]
    return zh if lang == "zh" else en


async def keycards_page(request: web.Request) -> web.Response:
    principal, lang, deps = require(request, Role.OPERATOR), pick_lang(request), request.app[DEPS]
    now = int(deps.clock() * 1000)
    csrf = principal.session.csrf if principal.session else ""
    rows = "".join(
        f"<tr><td>{e(r.site)}</td><td>{e(r.unit or '–')}</td><td>{e(r.contact or '–')}</td>"
        f"<td>{r.age_s(now) / 3600:.1f} h</td><td>"
        f'<form method="post" action="/console/keycards/{e(r.id)}/fulfil?lang={lang}" '
        f'class="inline"><input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<input name="card_ref" maxlength="120" placeholder="{w("card", lang)}">'
        f'<button type="submit" class="fulfil">{w("fulfil", lang)}</button></form></td></tr>'
        for r in deps.keycards.find(KeycardStatus.OPEN, principal.tenant)
    )
    table = (
        f"<table><thead><tr><th>{w('site', lang)}</th><th>{w('unit', lang)}</th>"
        f"<th>{w('contact', lang)}</th><th>{w('waiting', lang)}</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else f"<p>{w('none', lang)}</p>"
    )
    return shell(request, w("title", lang), f"<h1>{w('title', lang)}</h1>{table}", lang)


async def fulfil(request: web.Request) -> web.StreamResponse:
    principal, deps = require(request, Role.OPERATOR), request.app[DEPS]
    request_id = request.match_info["id"]
    try:
        req = deps.keycards.get(request_id)
    except KeycardError:
        req = None
    if req is None or req.tenant != principal.tenant:
        raise ApiError(404, "not_found", f"no key-card request {request_id}")
    form = await request.post()
    card = form.get("card_ref")
    try:
        deps.keycards.fulfil(req.id, card if isinstance(card, str) and card else None)
    except KeycardError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    raise web.HTTPSeeOther(f"/console/keycards?lang={pick_lang(request)}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/keycards", keycards_page)
    app.router.add_post("/console/keycards/{id:[A-Za-z0-9-]{1,64}}/fulfil", fulfil)
