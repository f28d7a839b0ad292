"""``create_app``: the aiohttp application from injected parts (no globals, no I/O at import)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream_processor.web import api, audit, notices, receipt_page
from stream_processor.web.auth import authenticate
from stream_processor.web.deps import DEPS, WebDeps
from stream_processor.web.errors import errors
from stream_processor.web.pages import add_routes as add_pages
from stream_processor.web.security import add_security_headers, real_client


async def healthz(request: web.Request) -> web.Response:
    deps: WebDeps = request.app[DEPS]
    try:
        deps.cameras.get()
    except Exception as exc:  # no valid registry at all
        return web.json_response({"status": "down", "cameras": str(exc)}, status=503)
    if deps.cameras.last_error is not None:  # serving the last valid one; say so
        return web.json_response(
            {"status": "degraded", "cameras": deps.cameras.last_error}, status=503
        )
    if deps.cameras.missing:  # a state, not a fault: nothing to serve notices for yet
        return web.json_response({"status": "ok", "cameras": "none registered yet"})
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[DEPS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(deps: WebDeps) -> web.Application:
    app = web.Application(
        middlewares=[real_client, errors, authenticate], client_max_size=64 * 1024
    )
    app[DEPS] = deps
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    notices.add_routes(app)
    api.add_routes(app)
    audit.add_routes(app)
    receipt_page.add_routes(app)
    add_pages(app)
    return app


def add_housekeeping(
    app: web.Application, contact_retention_s: float, every_s: float = 3600
) -> None:
    """Forget contact details of closed key-card requests, hourly (production wiring)."""
    log = logging.getLogger(__name__)

    async def loop() -> None:
        while True:
            n = app[DEPS].keycards.scrub_closed(contact_retention_s)
            if n:
                log.info("forgot contact details of %d closed key-card request(s)", n)
            await asyncio.sleep(every_s)

    async def start(app: web.Application) -> None:
        app[_HOUSEKEEPING] = asyncio.create_task(loop())

    async def stop(app: web.Application) -> None:
        app[_HOUSEKEEPING].cancel()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


_HOUSEKEEPING: web.AppKey[asyncio.Task[None]] = web.AppKey("facegate_housekeeping")
