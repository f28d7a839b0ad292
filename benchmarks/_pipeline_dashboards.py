"""Open live dashboards: N signed-in SSE clients on the web app's ``/console/live``,
read in a background thread for as long as the benchmark runs."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from _machine import BenchStack


def sessions(st: BenchStack, tenant: str, n: int) -> list[str]:
    """``n`` viewer sessions of one token, as a browser gets them by signing in."""
    from stream_processor.rights.db import open_rights_db, rights_db_path
    from stream_processor.web.tokens import Role, TokenBook

    db = open_rights_db(rights_db_path(st.state))
    try:
        book = TokenBook(db)
        _, token = book.create(tenant, Role.VIEWER, "pipeline bench dashboards")
        return [book.open_session(token)[0] for _ in range(n)]
    finally:
        db.close()


def wait_web(base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"web app at {base} did not answer within {timeout_s:.0f}s")


@dataclass
class Dashboards:
    base: str
    cookies: list[str]
    frames: int = 0
    connected: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def open(cls, st: BenchStack, tenant: str, n: int) -> Dashboards:
        base = st.env["FACEGATE_WEB_PUBLIC_URL"]
        wait_web(base)
        d = cls(base, sessions(st, tenant, n))
        d._thread = threading.Thread(target=lambda: asyncio.run(d._run()), daemon=True)
        d._thread.start()
        deadline = time.monotonic() + 20
        while d.connected < n and time.monotonic() < deadline:
            time.sleep(0.1)
        if d.connected < n:
            raise TimeoutError(f"{d.connected}/{n} dashboards connected to {base}/console/live")
        return d

    async def _one(self, session: object, cookie: str) -> None:
        import aiohttp

        assert isinstance(session, aiohttp.ClientSession)
        async with session.get(
            self.base + "/console/live",
            headers={"Cookie": f"fg_session={cookie}"},
            timeout=aiohttp.ClientTimeout(total=None),
        ) as resp:
            resp.raise_for_status()
            self.connected += 1
            async for line in resp.content:
                if line.startswith(b"data: "):
                    self.frames += 1

    async def _run(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            tasks = [asyncio.create_task(self._one(session, c)) for c in self.cookies]
            while not self._stop.is_set():
                await asyncio.sleep(0.2)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
