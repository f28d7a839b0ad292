"""The operator's JSON API (``Authorization: Bearer <token>``): key-card requests."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from stream_processor.rights.keycards import KeycardError, KeycardStatus
from stream_processor.web.deps import DEPS, WebDeps

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def operator_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        token = request.app[DEPS].operator_token
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "operator token required")
    return await handler(request)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text='{"error": "body must be JSON"}') from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}')
    return body


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise KeycardError(f"{key} must be a string")
    return value


async def create_keycard(request: web.Request) -> web.Response:
    deps: WebDeps = request.app[DEPS]
    body = await _json(request)
    try:
        req = deps.keycards.request(
            str(body.get("tenant", "")),
            str(body.get("site", "")),
            channel="api",
            unit=_opt_str(body, "unit"),
            contact=_opt_str(body, "contact"),
            subject=_opt_str(body, "subject"),
            card_only=bool(body.get("card_only", True)),
        )
    except KeycardError as exc:
        return _error(400, str(exc))
    return web.json_response(req.public_doc(int(deps.clock() * 1000)), status=201)


async def list_keycards(request: web.Request) -> web.Response:
    deps: WebDeps = request.app[DEPS]
    status = request.query.get("status")
    try:
        wanted = KeycardStatus(status) if status else None
    except ValueError:
        return _error(400, f"status must be one of {[s.value for s in KeycardStatus]}")
    now = int(deps.clock() * 1000)
    rows = deps.keycards.find(wanted, request.query.get("tenant"), request.query.get("site"))
    summary = [
        {
            "tenant": s.tenant,
            "site": s.site,
            "open": s.open,
            "oldest_age_s": round(s.oldest_age_s, 1),
        }
        for s in deps.keycards.open_summary()
    ]
    return web.json_response({"requests": [r.public_doc(now) for r in rows], "open": summary})


async def close_keycard(request: web.Request) -> web.Response:
    deps: WebDeps = request.app[DEPS]
    body = await _json(request) if request.can_read_body else {}
    request_id = request.match_info["id"]
    try:
        if request.match_info["action"] == "fulfil":
            req = deps.keycards.fulfil(request_id, _opt_str(body, "card_ref"))
        else:
            note = _opt_str(body, "note")
            if not note:
                return _error(400, "a cancellation says why (note)")
            req = deps.keycards.cancel(request_id, note)
    except KeycardError as exc:
        return _error(409 if "not open" in str(exc) else 404, str(exc))
    return web.json_response(req.public_doc(int(deps.clock() * 1000)))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/keycards", create_keycard)
    app.router.add_get("/api/v1/keycards", list_keycards)
    app.router.add_post("/api/v1/keycards/{id}/{action:fulfil|cancel}", close_keycard)
