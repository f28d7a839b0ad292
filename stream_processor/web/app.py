"""``create_app``: the aiohttp application from injected parts (no globals, no I/O at import)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream_processor.web import api, audit, notices, receipt_page
from stream_processor.web.deps import DEPS, WebDeps


async def healthz(request: web.Request) -> web.Response:
    deps: WebDeps = request.app[DEPS]
    try:
        deps.cameras.get()
    except Exception as exc:  # a broken registry is reported, not hidden
        return web.json_response({"status": "degraded", "cameras": str(exc)}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[DEPS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(deps: WebDeps) -> web.Application:
    app = web.Application(middlewares=[api.operator_auth], client_max_size=64 * 1024)
    app[DEPS] = deps
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    notices.add_routes(app)
    api.add_routes(app)
    audit.add_routes(app)
    receipt_page.add_routes(app)
    return app
