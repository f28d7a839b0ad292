"""The subject view page (privacy officer only): look up a pseudonym with a reason."""

from __future__ import annotations

import time

from aiohttp import web
from pydantic import ValidationError

from stream_processor.notices.config import Lang
from stream_processor.web.api.console import registry_sites
from stream_processor.web.auth import Principal, require
from stream_processor.web.deps import DEPS
from stream_processor.web.errors import ApiError
from stream_processor.web.pages.layout import e, pick_lang, shell
from stream_processor.web.subject import REASONS, SubjectLookup, look_up
from stream_processor.web.tokens import Role

WORDS = {
    "title": ("数据主体查询", "Subject view"),
    "note": (
        "每次查询都会写入审计日志（您的令牌标签、原因和案件编号）。",
        "Every look is written to the audit log (your token label, the reason, the case).",
    ),
    "site": ("小区", "Site"),
    "subject": ("假名编号", "Pseudonym"),
    "reason": ("原因", "Reason"),
    "case": ("案件编号", "Case reference"),
    "look": ("查询", "Look up"),
    "events": ("已存储事件", "Stored events"),
    "keycards": ("门卡申请", "Key-card requests"),
    "audited": ("已记入审计日志，序号", "Written to the audit log, entry"),
}


def w(key: str, lang: Lang) -> str:
    zh, en = WORDS[key]
    return zh if lang == "zh" else en


def _when(ms: int | None) -> str:
    return "–" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _form(principal: Principal, sites: list[str], lang: Lang) -> str:
    csrf = principal.session.csrf if principal.session else ""
    site_opts = "".join(f'<option value="{e(s)}">{e(s)}</option>' for s in sites)
    reason_opts = "".join(f'<option value="{r}">{r}</option>' for r in REASONS)
    return (
        f'<form method="post" action="/console/subject?lang={lang}" class="card">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<label>{w("site", lang)} <select name="site" id="site">{site_opts}</select></label>'
        f'<label>{w("subject", lang)} <input name="subject" id="subject" maxlength="40" '
        'autocomplete="off" required></label>'
        f'<label>{w("reason", lang)} <select name="reason" id="reason">{reason_opts}</select>'
        f'</label><label>{w("case", lang)} <input name="case_ref" id="case_ref" maxlength="64" '
        f'required></label><button type="submit" id="look">{w("look", lang)}</button></form>'
    )


async def subject_form(request: web.Request) -> web.Response:
    principal, lang = require(request, Role.PRIVACY_OFFICER), pick_lang(request)
    sites = sorted(registry_sites(request.app[DEPS], principal.tenant))
    body = f"<h1>{w('title', lang)}</h1><p>{w('note', lang)}</p>" + _form(principal, sites, lang)
    return shell(request, w("title", lang), body, lang)


async def subject_result(request: web.Request) -> web.Response:
    principal, lang = require(request, Role.PRIVACY_OFFICER), pick_lang(request)
    form = await request.post()
    fields = {k: form.get(k) for k in ("site", "subject", "reason", "case_ref")}
    try:
        q = SubjectLookup.model_validate({k: v for k, v in fields.items() if isinstance(v, str)})
    except ValidationError as exc:
        raise ApiError(422, "invalid", str(exc.errors()[0]["msg"])) from exc
    view = look_up(request.app[DEPS], principal, q)
    events = "".join(
        f"<tr><td>{_when(r.occurred_at_ms)}</td><td>{e(r.gate)}</td><td>{e(r.kind)}</td>"
        f"<td>{e(r.decision)}</td><td>{e(r.purpose)}</td><td>{_when(r.expires_at_ms)}</td></tr>"
        for r in view.events
    )
    cards = "".join(
        f"<li>{e(k.id)} · {e(k.status)} · {_when(k.requested_at_ms)}</li>" for k in view.keycards
    )
    body = (
        f"<h1>{w('title', lang)}: {e(q.subject)} @ {e(q.site)}</h1>"
        f'<p id="audited">{w("audited", lang)} {view.audit_seq}</p>'
        f'<h2>{w("events", lang)} (<span id="event-count">{len(view.events)}</span>)</h2>'
        f"<table><tbody>{events}</tbody></table>"
        f"<h2>{w('keycards', lang)}</h2><ul>{cards}</ul>"
    )
    return shell(request, w("title", lang), body, lang)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/subject", subject_form)
    app.router.add_post("/console/subject", subject_result)
