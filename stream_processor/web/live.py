"""Live updates: ONE fan-out per tenant, pushed to every open dashboard over Server-Sent Events.

A tenant's feed starts with its first listener and stops after its last: once
a second it builds the overview (one store query for the whole tenant, not
one per browser) and hands the same encoded frame to every listener's
one-slot queue. A slow browser only ever misses intermediate frames; it never
holds the feed or grows memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiohttp import web

from stream_processor.web.auth import PRINCIPAL, resolve
from stream_processor.web.deps import DEPS

log = logging.getLogger(__name__)


class TenantFeed:
    def __init__(self, tenant: str, build: Callable[[str], bytes], every_s: float) -> None:
        self.tenant = tenant
        self._build = build
        self._every = every_s
        self._listeners: set[asyncio.Queue[bytes]] = set()
        self._task: asyncio.Task[None] | None = None
        self.frames = 0
        self.last: bytes | None = None

    def subscribe(self) -> asyncio.Queue[bytes]:
        q: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        if self.last is not None:
            q.put_nowait(self.last)
        self._listeners.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes]) -> None:
        self._listeners.discard(q)
        if not self._listeners and self._task is not None:
            self._task.cancel()
            self._task = None

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    async def _run(self) -> None:
        while self._listeners:
            try:
                frame = await asyncio.to_thread(self._build, self.tenant)
            except Exception:
                log.exception("live overview of %s failed", self.tenant)
                await asyncio.sleep(self._every)
                continue
            self.last, self.frames = frame, self.frames + 1
            for q in self._listeners:
                if q.full():
                    q.get_nowait()
                q.put_nowait(frame)
            await asyncio.sleep(self._every)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class LiveHub:
    """The feeds of every tenant with an open dashboard in this process."""

    def __init__(self, build: Callable[[str], bytes], every_s: float = 1.0) -> None:
        self._build = build
        self._every = every_s
        self.feeds: dict[str, TenantFeed] = {}

    def feed(self, tenant: str) -> TenantFeed:
        if tenant not in self.feeds:
            self.feeds[tenant] = TenantFeed(tenant, self._build, self._every)
        return self.feeds[tenant]

    async def close(self) -> None:
        for f in self.feeds.values():
            await f.close()


HUB: web.AppKey[LiveHub] = web.AppKey("facegate_live", LiveHub)


async def stream(request: web.Request) -> web.StreamResponse:
    """``/console/live``: ``event: overview`` frames for the signed-in tenant."""
    principal = request[PRINCIPAL]
    feed = request.app[HUB].feed(principal.tenant)
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    q = feed.subscribe()
    every = request.app[DEPS].live_recheck_s
    recheck = time.monotonic() + every
    try:
        await resp.write(b"retry: 2000\n\n")
        while True:
            frame = await q.get()
            if time.monotonic() >= recheck:
                # A stream outlives its sign-in: a revoked token, an expired or closed
                # session ends it here (checked now and then, not per frame).
                again = resolve(request)
                if again is None or again.token.id != principal.token.id:
                    break
                recheck = time.monotonic() + every
            await resp.write(b"event: overview\ndata: " + frame + b"\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        feed.unsubscribe(q)
    return resp


def install(app: web.Application, every_s: float = 1.0) -> None:
    from stream_processor.web.api.console import overview_of

    def build(tenant: str) -> bytes:
        return overview_of(app[DEPS], tenant).model_dump_json().encode()

    app[HUB] = LiveHub(build, every_s)

    async def close(app: web.Application) -> None:
        await app[HUB].close()

    app.on_cleanup.append(close)
    app.router.add_get("/console/live", stream)
