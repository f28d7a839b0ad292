"""Notice pages (one per camera, zh/en) and the resident's key-card form."""

from __future__ import annotations

import re

from aiohttp import web

from stream_processor.audit.errors import AuditError
from stream_processor.audit.keys import Keyring
from stream_processor.notices.config import Lang
from stream_processor.notices.html import (
    render_message,
    render_notice,
    render_site_index,
    t,
)
from stream_processor.notices.view import (
    build_content,
    content_from_doc,
    notice_path,
    notice_url,
)
from stream_processor.rights.keycards import KeycardError
from stream_processor.web.deps import DEPS, WebDeps

_HEADERS = {
    # A policy change must show at once: never serve a cached notice.
    "Cache-Control": "no-cache, max-age=0",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def pick_lang(request: web.Request) -> Lang:
    asked = request.query.get("lang")
    if asked in ("zh", "en"):
        return "zh" if asked == "zh" else "en"
    accept = request.headers.get("Accept-Language", "").strip().lower()
    return "en" if accept.startswith("en") else "zh"


def _html(text: str, lang: Lang, status: int = 200) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**_HEADERS, "Content-Language": "zh-CN" if lang == "zh" else "en"},
    )


#: No camera registry yet: the page says so, and how the operator registers cameras.
_NONE_YET = {
    "zh": "尚未登记任何摄像头，因此没有告知。运营方：在摄像头登记文件（cameras.yaml）中列出"
    "摄像头，并用 facegate notice validate-config 检查。",
    "en": "No cameras are registered yet, so there is no notice to show. Operators: list the "
    "cameras in the camera registry (cameras.yaml) and check it with "
    "facegate notice validate-config.",
}


def _not_found(lang: Lang, none_yet: bool = False) -> web.Response:
    if none_yet:
        msg = _NONE_YET["zh" if lang == "zh" else "en"]
    else:
        msg = "没有这个摄像头的告知。" if lang == "zh" else "There is no notice for this camera."
    return _html(render_message("title", msg, lang), lang, status=404)


def _key_id(deps: WebDeps) -> str | None:
    paths = deps.audit_paths
    if paths is None or not paths.public_key.exists():
        return None
    try:
        return Keyring.load(paths.public_key).key_ids[-1]  # the newest key signs now
    except AuditError:
        return None


#: A notice version as asked in the query: ASCII digits only (``str.isdigit`` takes "²",
#: which ``int`` refuses), few enough for any database integer.
_VERSION = re.compile(r"[0-9]{1,9}")


def _version(asked: str | None) -> int | None:
    """The archived version asked for; ``None`` (the current page) for anything else."""
    if asked is None or _VERSION.fullmatch(asked) is None:
        return None
    return int(asked)


async def camera_notice(request: web.Request) -> web.Response:
    deps: WebDeps = request.app[DEPS]
    lang = pick_lang(request)
    tenant, site_id, camera_id = (request.match_info[k] for k in ("tenant", "site", "camera"))
    site = deps.cameras.get().site(tenant, site_id)
    camera = site.camera(camera_id) if site else None
    if site is None or camera is None:
        return _not_found(lang, deps.cameras.missing)
    content = build_content(site, camera, deps.retention)
    current = deps.archive.current(content)
    asked = _version(request.query.get("version"))
    if asked is not None and asked != current.version:
        doc = deps.archive.document(tenant, site_id, camera_id, asked)
        if doc is None:
            return _not_found(lang)
        old = next(
            v for v in deps.archive.history(tenant, site_id, camera_id) if v.version == asked
        )
        page = render_notice(
            content_from_doc(doc),
            version=old.version,
            since_ms=old.since_ms,
            lang=lang,
            current_version=current.version,
        )
        return _html(page, lang)
    page = render_notice(
        content,
        version=current.version,
        since_ms=current.since_ms,
        lang=lang,
        audit_key_id=_key_id(deps),
    )
    response = _html(page, lang)
    response.headers["ETag"] = f'"{current.digest[:32]}"'
    return response


async def site_index(request: web.Request) -> web.Response:
    deps: WebDeps = request.app[DEPS]
    lang = pick_lang(request)
    site = deps.cameras.get().site(request.match_info["tenant"], request.match_info["site"])
    if site is None:
        return _not_found(lang, deps.cameras.missing)
    return _html(render_site_index(site, lang), lang)


async def keycard_form(request: web.Request) -> web.Response:
    """A resident asks for a key card from the notice page (no account, no pseudonym)."""
    deps: WebDeps = request.app[DEPS]
    client = request.remote or "unknown"
    if not deps.form_limit.allow(client):
        lang_q: Lang = "en" if request.query.get("lang") == "en" else "zh"
        msg = "请稍后再试。" if lang_q == "zh" else "Too many requests; please try again later."
        return _html(render_message("bad_request", msg, lang_q), lang_q, status=429)
    form = await request.post()
    lang: Lang = "en" if form.get("lang") == "en" else "zh"
    tenant, site_id = request.match_info["tenant"], request.match_info["site"]
    site = deps.cameras.get().site(tenant, site_id)
    if site is None:
        return _not_found(lang)
    camera = form.get("camera")
    back = (
        notice_path(tenant, site_id, camera) + f"?lang={lang}"
        if isinstance(camera, str) and site.camera(camera)
        else None
    )
    unit, contact = form.get("unit"), form.get("contact")
    try:
        req = deps.keycards.request(
            tenant,
            site_id,
            channel="web",
            unit=unit if isinstance(unit, str) else None,
            contact=contact if isinstance(contact, str) else None,
        )
    except KeycardError as exc:
        return _html(render_message("bad_request", str(exc), lang, back), lang, status=400)
    text = f"{t('received_text', lang)} {req.id}. {site.keycard.get(lang)}"
    return _html(render_message("received", text, lang, back), lang, status=201)


async def camera_qr(request: web.Request) -> web.Response:
    """The QR code of one camera's page (PNG), for the dashboard or a one-off print."""
    import io

    import segno

    deps: WebDeps = request.app[DEPS]
    tenant, site_id, camera_id = (request.match_info[k] for k in ("tenant", "site", "camera"))
    site = deps.cameras.get().site(tenant, site_id)
    if site is None or site.camera(camera_id) is None:
        raise web.HTTPNotFound()
    buf = io.BytesIO()
    url = notice_url(deps.public_url, tenant, site_id, camera_id)
    segno.make(url, error="m", micro=False).save(buf, kind="png", scale=8, border=4)
    return web.Response(body=buf.getvalue(), content_type="image/png")


async def site_sheet(request: web.Request) -> web.Response:
    """The printable sheet of a site (PDF), as ``facegate notice sheet`` makes it."""
    import asyncio
    import tempfile
    from pathlib import Path

    from stream_processor.notices.sheet import render_sheet

    deps: WebDeps = request.app[DEPS]
    site = deps.cameras.get().site(request.match_info["tenant"], request.match_info["site"])
    if site is None:
        raise web.HTTPNotFound()
    with tempfile.TemporaryDirectory(prefix="facegate-sheet-") as tmp:
        out = Path(tmp) / "sheet.pdf"
        await asyncio.to_thread(render_sheet, site, deps.public_url, out)
        body = out.read_bytes()
    name = f"notice-sheet-{site.tenant}-{site.site}.pdf"
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/notice/{tenant}/{site}", site_index)
    app.router.add_get("/notice/{tenant}/{site}/sheet.pdf", site_sheet)
    app.router.add_get("/notice/{tenant}/{site}/{camera}/qr.png", camera_qr)
    app.router.add_get("/notice/{tenant}/{site}/{camera}", camera_notice)
    app.router.add_post("/notice/{tenant}/{site}/keycard", keycard_form)
