"""Sign in by pasting a token once (→ a session cookie), and sign out."""

from __future__ import annotations

from aiohttp import web

from stream_processor.web.auth import PRINCIPAL, SESSION_COOKIE
from stream_processor.web.deps import DEPS
from stream_processor.web.pages.layout import e, pick_lang, shell, tr


def sign_in_page(request: web.Request, status: int = 200, message: str = "") -> web.Response:
    lang = pick_lang(request)
    note = f'<p class="alarm" id="message">{e(message)}</p>' if message else ""
    body = (
        f"<h1>{tr('console', lang)}</h1>{note}"
        f'<form method="post" action="/console/sign-in?lang={lang}" class="card">'
        f'<label for="token">{tr("paste", lang)}</label>'
        '<input id="token" name="token" type="password" autocomplete="off" required '
        'maxlength="100">'
        f'<button type="submit" id="sign-in">{tr("sign_in", lang)}</button></form>'
    )
    return shell(request, tr("sign_in", lang), body, lang, status=status)


async def sign_in_form(request: web.Request) -> web.Response:
    return sign_in_page(request)


async def sign_in(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    if not deps.form_limit.allow(f"sign-in:{request.remote or 'unknown'}"):
        return sign_in_page(request, 429, "too many attempts; try again later")
    form = await request.post()
    given = form.get("token")
    token = deps.tokens.authenticate(given.strip()) if isinstance(given, str) else None
    if token is None:
        return sign_in_page(request, 401, "unknown, revoked or expired token")
    secret, session = deps.tokens.open_session(token)
    lang = pick_lang(request)
    resp = web.HTTPSeeOther(f"/console?lang={lang}")
    secure = request.secure or deps.public_url.startswith("https://")
    max_age = max(1, (session.expires_at_ms - int(deps.clock() * 1000)) // 1000)
    resp.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="Strict",
        secure=secure,
        path="/",
        max_age=max_age,
    )
    resp.set_cookie("fg_lang", lang, samesite="Strict", secure=secure, path="/")
    raise resp


async def sign_out(request: web.Request) -> web.StreamResponse:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and request.get(PRINCIPAL) is not None:
        request.app[DEPS].tokens.close_session(cookie)
    resp = web.HTTPSeeOther("/console/sign-in")
    resp.del_cookie(SESSION_COOKIE, path="/")
    raise resp


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/sign-in", sign_in_form)
    app.router.add_post("/console/sign-in", sign_in)
    app.router.add_post("/console/sign-out", sign_out)
