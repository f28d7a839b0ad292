"""/audit/: the published audit log, its signed checkpoints and the operator's public key.

What a resident, a court or a notary downloads to run ``facegate audit
verify`` (or their own verifier, see docs/rights.md) without trusting the
operator's database. The files hold no pseudonym or resident id.
"""

from __future__ import annotations

from aiohttp import web

from stream_processor.web.deps import DEPS

_FILES = {
    "log.jsonl": ("log", "application/x-ndjson"),
    "checkpoints.jsonl": ("checkpoints", "application/x-ndjson"),
    "operator-public.pem": ("public_key", "application/x-pem-file"),
}


async def published(request: web.Request) -> web.StreamResponse:
    paths = request.app[DEPS].audit_paths
    name = request.match_info["name"]
    if paths is None or name not in _FILES:
        raise web.HTTPNotFound()
    attr, ctype = _FILES[name]
    path = getattr(paths, attr)
    if not path.exists():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": ctype, "Cache-Control": "no-cache, max-age=0"}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/audit/{name}", published)
