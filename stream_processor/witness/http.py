"""The witness's own HTTP face, apart from the operator: its metrics, its fork
statements, its public key, the heads it cosigned, and ``POST /add-checkpoint``
(C2SP tlog-witness) for logs that push; pull rounds run in the background."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream_processor.witness.service import WitnessService

log = logging.getLogger(__name__)
_SERVICE: web.AppKey[WitnessService] = web.AppKey("facegate_witness", WitnessService)
_REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("facegate_witness_registry")
_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("facegate_witness_task")


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def fork_statements(request: web.Request) -> web.Response:
    statements = request.app[_SERVICE].state.fork_statements()
    return web.json_response([json.loads(s) for s in statements])


async def public_key(request: web.Request) -> web.Response:
    return web.Response(text=request.app[_SERVICE].vkey + "\n")


async def checkpoint(request: web.Request) -> web.Response:
    """The operator's checkpoint this witness last cosigned, as it received it."""
    head = request.app[_SERVICE].state.head(request.match_info["origin"])
    if head is None:
        raise web.HTTPNotFound(text="no checkpoint of that log cosigned here\n")
    return web.Response(text=head.note, content_type="text/plain")


async def add_checkpoint(request: web.Request) -> web.Response:
    """C2SP tlog-witness: a log pushes its new checkpoint with a consistency proof."""
    from stream_processor.witness.push import add_checkpoint as answer

    body = await request.read()
    out = await asyncio.to_thread(answer, request.app[_SERVICE], body)
    return web.Response(status=out.status, text=out.text, content_type=out.content_type)


def create_witness_app(
    service: WitnessService, registry: CollectorRegistry, interval_s: float, pull: bool = True
) -> web.Application:
    """``pull``: also run a round every ``interval_s`` against the log (False: push only)."""
    app = web.Application(client_max_size=16 * 1024)
    app[_SERVICE] = service
    app[_REGISTRY] = registry
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/fork-statements", fork_statements)
    app.router.add_get("/public-key", public_key)
    app.router.add_get("/checkpoint/{origin:.+}", checkpoint)
    app.router.add_post("/add-checkpoint", add_checkpoint)

    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(service.run_once)
            except Exception:  # a round must never stop the witness
                log.exception("witness round failed")
            await asyncio.sleep(interval_s)

    async def start(app: web.Application) -> None:
        app[_TASK] = asyncio.create_task(loop())

    async def stop(app: web.Application) -> None:
        app[_TASK].cancel()

    if pull:
        app.on_startup.append(start)
        app.on_cleanup.append(stop)
    return app
