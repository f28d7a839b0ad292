"""Console benchmark: the firm overview API, first render in headless Chromium, stored row →
number on the open page, and N open live dashboards on one web process.

Set-up (knobs): ``--sites`` × ``--gates`` gates of one firm with ``--days`` of per-minute
aggregates (two kinds per gate-minute) in a private SQLite store, and a
``facegate web serve`` process on a free port (Kafka pointed at a closed port:
no broker is needed, its followers just wait). Never touches a running demo.

1. overview — ``GET /api/v1/overview`` sequentially, ``--requests`` times: p50/p95 ms.
2. render   — Debian Chromium (Selenium), signed in: ``get(/console)`` until the uPlot
              canvas is drawn, ``--renders`` times: median and max seconds.
3. live     — the overview page open; a row for the current minute is written into the
              store; time until the page's last-hour figure shows it (the feed ticks 1/s).
4. fanout   — ``--dashboards`` SSE connections to /console/live; the web process's CPU
              (utime + stime from /proc) over ``--fanout-s`` seconds, as a share of one core.

    .venv/bin/python benchmarks/console_bench.py                      # the issue's set-up
    .venv/bin/python benchmarks/console_bench.py --sites 5 --days 1 --dashboards 20 \\
        --fanout-s 5 --requests 50 --renders 2                          # quick proof
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._machine import machine_line  # noqa: E402

FACEGATE = str(Path(sys.executable).with_name("facegate"))
TENANT = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load(store_path: Path, sites: int, gates: int, days: int) -> int:
    """Per-minute aggregates: every gate, every minute of ``days`` up to now."""
    from stream_processor.store.base import AggregateKey
    from stream_processor.store.sqlite import SqliteEventStore

    store = SqliteEventStore(store_path)
    now_min = int(time.time() // 60) * 60_000
    minutes = days * 1440
    rows = 0
    try:
        for m in range(minutes, 0, -60):  # one transaction per hour of data
            counts: dict[AggregateKey, int] = {}
            for back in range(m, max(m - 60, 0), -1):
                t = now_min - back * 60_000
                for s in range(sites):
                    for g in range(gates):
                        site, gate = f"site-{s:03d}", f"gate-{g}"
                        counts[
                            AggregateKey(t, TENANT, site, gate, "face_match", "granted", "stored")
                        ] = 3
                        counts[
                            AggregateKey(t, TENANT, site, gate, "key_card", "granted", "no_consent")
                        ] = 1
            store.write_batch([], counts)
            rows += len(counts)
    finally:
        store.close()
    return rows


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_web(state: Path, store_path: Path, port: int) -> subprocess.Popen[bytes]:
    from stream_processor.runtime.kafka_auth import ensure_passwords

    # The web process is configured as on a secured stack whatever the default: it
    # reads its role's login from the state dir (made here; no broker checks it).
    ensure_passwords(state)
    env = {
        **os.environ,
        "FACEGATE_STATE_DIR": str(state),
        "FACEGATE_KAFKA_AUTH": "true",
        "FACEGATE_KAFKA_PORT": str(free_port()),  # closed: the followers wait, nothing else
        "FACEGATE_MQTT_PORT": str(free_port()),
        "FACEGATE_PROCESSOR_STORE_PATH": str(store_path),
        "FACEGATE_WEB_PORT": str(port),
        "FACEGATE_WEB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FACEGATE_WEB_RETENTION_SOURCE": "file",
        "FACEGATE_LOG_LEVEL": "WARNING",
    }
    log = open(state / "web.log", "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen([FACEGATE, "web", "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=2):  # noqa: S310
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"web app did not start; see {state / 'web.log'}")


def make_token(state: Path) -> str:
    from stream_processor.rights.db import open_rights_db, rights_db_path
    from stream_processor.web.tokens import Role, TokenBook

    db = open_rights_db(rights_db_path(state))
    try:
        return str(TokenBook(db).create(TENANT, Role.VIEWER, "bench")[0])
    finally:
        db.close()


def bench_overview(base: str, token: str, n: int) -> tuple[float, float]:
    times = []
    req = urllib.request.Request(  # noqa: S310 - the bench's own local server
        base + "/api/v1/overview", headers={"Authorization": f"Bearer {token}"}
    )
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            resp.read()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def browser(base: str, token: str) -> Any:
    sys.path.insert(0, str(REPO))
    from tests.browser.conftest import new_driver

    driver = new_driver()
    driver.get(base + "/console/sign-in")
    driver.find_element("id", "token").send_keys(token)
    driver.find_element("id", "sign-in").click()
    return driver


def quit_browser(driver: Any) -> None:
    """Quit Chromium and remove the profile folder ``new_driver`` made for it in /tmp."""
    profile = Path(driver.capabilities.get("chrome", {}).get("userDataDir") or "")
    driver.quit()
    if profile.name.startswith("facegate-chromium-"):
        shutil.rmtree(profile, ignore_errors=True)


def bench_render(driver: Any, base: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        driver.get(base + "/console")
        while not driver.find_elements("css selector", ".uplot-box canvas"):
            time.sleep(0.01)
        out.append(time.perf_counter() - t0)
    return out


def bench_live(driver: Any, store_path: Path, sites: int) -> float:
    from stream_processor.store.base import AggregateKey
    from stream_processor.store.sqlite import SqliteEventStore

    site = "site-000"
    cell = f'tr[data-site="{site}"] [data-f="hour"]'

    def shown() -> str:
        return str(driver.find_element("css selector", cell).text)

    deadline = time.monotonic() + 10
    while driver.find_element("id", "live").get_attribute("data-frames") in (None, "") and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    before = shown()
    # The previous full minute is what the overview counts as "last hour" at its edge.
    minute = int(time.time() // 60) * 60_000 - 60_000
    store = SqliteEventStore(store_path)
    try:
        t0 = time.perf_counter()
        store.write_batch(
            [], {AggregateKey(minute, TENANT, site, "gate-0", "pin", "granted", "stored"): 1000}
        )
    finally:
        store.close()
    while shown() == before:
        if time.perf_counter() - t0 > 30:
            return float("inf")
        time.sleep(0.02)
    return time.perf_counter() - t0


async def open_dashboards(
    base: str, cookies: list[str], seconds: float, pid: int
) -> tuple[float, int]:
    import aiohttp

    frames = 0

    async def one(session: aiohttp.ClientSession, cookie: str) -> None:
        nonlocal frames
        async with session.get(
            base + "/console/live",
            headers={"Cookie": f"fg_session={cookie}"},
            timeout=aiohttp.ClientTimeout(total=None),
        ) as resp:
            async for line in resp.content:
                if line.startswith(b"data: "):
                    frames += 1

    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        tasks = [asyncio.create_task(one(session, c)) for c in cookies]
        await asyncio.sleep(3)  # all connected and the feed running
        cpu0, t0, f0 = proc_cpu_s(pid), time.monotonic(), frames
        await asyncio.sleep(seconds)
        cpu1, t1, f1 = proc_cpu_s(pid), time.monotonic(), frames
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return (cpu1 - cpu0) / (t1 - t0), f1 - f0


def sessions(state: Path, n: int) -> list[str]:
    from stream_processor.rights.db import open_rights_db, rights_db_path
    from stream_processor.web.tokens import Role, TokenBook

    db = open_rights_db(rights_db_path(state))
    try:
        book = TokenBook(db)
        _, token = book.create(TENANT, Role.VIEWER, "bench dashboards")
        return [book.open_session(token)[0] for _ in range(n)]
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--gates", type=int, default=4, help="gates per site")
    ap.add_argument("--days", type=int, default=7, help="days of per-minute aggregates")
    ap.add_argument("--requests", type=int, default=200, help="overview API requests")
    ap.add_argument("--renders", type=int, default=5, help="first renders in Chromium")
    ap.add_argument("--dashboards", type=int, default=200, help="open SSE dashboards")
    ap.add_argument("--fanout-s", type=float, default=30.0, help="CPU measuring window")
    a = ap.parse_args()

    print(machine_line())
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}")
    with tempfile.TemporaryDirectory(prefix="facegate-console-bench-") as tmp:
        state, store_path = Path(tmp) / "state", Path(tmp) / "events.sqlite"
        state.mkdir()
        t0 = time.perf_counter()
        rows = load(store_path, a.sites, a.gates, a.days)
        print(
            f"set-up: {a.sites} sites x {a.gates} gates, {a.days} d of per-minute aggregates: "
            f"{rows:,} rows in {time.perf_counter() - t0:.1f} s"
        )
        port = free_port()
        web = start_web(state, store_path, port)
        base = f"http://127.0.0.1:{port}"
        try:
            token = make_token(state)
            p50, p95 = bench_overview(base, token, a.requests)
            print(
                f"overview API: {a.requests} requests, p50 {p50:.1f} ms, p95 {p95:.1f} ms "
                f"(goal p95 <= 100 ms)"
            )
            driver = browser(base, token)
            try:
                renders = bench_render(driver, base, a.renders)
                print(
                    f"first render (chart drawn): median {statistics.median(renders):.2f} s, "
                    f"max {max(renders):.2f} s over {a.renders} (goal <= 1.5 s)"
                )
                live = bench_live(driver, store_path, a.sites)
                print(f"stored row -> number on the open page: {live:.2f} s (goal <= 2 s)")
            finally:
                quit_browser(driver)
            cookies = sessions(state, a.dashboards)
            share, frames = asyncio.run(open_dashboards(base, cookies, a.fanout_s, web.pid))
            print(
                f"{a.dashboards} open dashboards: web process {share * 100:.1f} % of one core "
                f"over {a.fanout_s:.0f} s, {frames:,} frames delivered (goal < 100 %)"
            )
        finally:
            web.terminate()
            web.wait(30)
    print(f"load average at end: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
