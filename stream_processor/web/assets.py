"""The console's static files: our own JS/CSS and uPlot from npm (pinned, lock file committed).

``ensure_assets()`` runs ``npm ci`` in ``stream_processor/web/assets/`` when
uPlot is not installed yet (set-up: ``make setup``, ``facegate web serve``,
the tests); npm itself comes from Debian like the other system packages.
The app serves only the files listed here, never a directory listing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from aiohttp import web

from stream_processor.errors import FacegateError

ASSETS = Path(__file__).resolve().parent / "assets"
_UPLOT = ASSETS / "node_modules" / "uplot" / "dist"
FILES: dict[str, tuple[Path, str]] = {
    "uPlot.iife.min.js": (_UPLOT / "uPlot.iife.min.js", "text/javascript"),
    "uPlot.min.css": (_UPLOT / "uPlot.min.css", "text/css"),
    "console.js": (ASSETS / "static" / "console.js", "text/javascript"),
    "console.css": (ASSETS / "static" / "console.css", "text/css"),
}


class AssetError(FacegateError):
    """The console's browser libraries are missing and cannot be installed."""


def ensure_assets() -> None:
    """Install the pinned npm packages if missing (idempotent; needs npm)."""
    if all(path.exists() for path, _ in FILES.values()):
        return
    npm = shutil.which("npm")
    if npm is None:
        from stream_processor.runtime.system import ensure_debian_packages

        ensure_debian_packages({"npm": "npm"})
        npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm not found; run: apt-get install npm")
    done = subprocess.run(  # noqa: S603 - fixed argv
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=ASSETS,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssetError(f"npm ci in {ASSETS} failed: {done.stderr[-1000:]}")


async def asset(request: web.Request) -> web.StreamResponse:
    entry = FILES.get(request.match_info["name"])
    if entry is None or not entry[0].exists():
        raise web.HTTPNotFound()
    path, ctype = entry
    return web.FileResponse(
        path,
        headers={
            "Content-Type": ctype,
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/assets/{name}", asset)
