"""The story's public-facing steps: the camera notice with its QR sheet, and the console."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import yaml

from stream_processor.cli.demo.firm import REAL_GATES, REAL_SITE, TENANT
from stream_processor.cli.demo.scene import Scene
from stream_processor.cli.demo.story import Step

EXAMPLE_CAMERAS = Path(__file__).resolve().parents[3] / "deploy/config/cameras.example.yaml"


def write_cameras(scene: Scene) -> Path:
    """The example registry, re-addressed to the demo firm's riverside gates, where the web
    app reads it (``FACEGATE_WEB_CAMERAS_PATH``, default <state>/config/cameras.yaml)."""
    from stream_processor.web.settings import WebSettings

    doc = yaml.safe_load(EXAMPLE_CAMERAS.read_text(encoding="utf-8"))
    site = doc["sites"][0]
    site.update(tenant=TENANT, site=REAL_SITE)
    site["name"] = {"zh": "河畔小区", "en": "Riverside Residences"}
    template = site["cameras"][0]
    site["cameras"] = [
        {**template, "id": f"{gate}-cam-1", "gate": gate,
         "location": {"zh": f"{gate} 入口", "en": f"{gate.capitalize()} entrance"}}
        for gate in REAL_GATES
    ]  # fmt: skip
    doc["sites"] = [site]
    path = WebSettings().cameras(scene.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def notice(scene: Scene) -> Step:
    step = Step("notice", "The camera notices: a page per camera and a QR sheet to print")
    cameras = write_cameras(scene)
    sheet = scene.demo_dir / f"notice-sheet-{TENANT}-{REAL_SITE}.png"
    done = scene.cli("notice", "sheet", "--site", REAL_SITE, "--tenant", TENANT,
                     "--cameras", str(cameras), "--out", str(sheet),
                     "--base-url", scene.web_url)  # fmt: skip
    urls = [x.split(": ", 1)[1] for x in done.stdout.splitlines() if ": http" in x]
    pages = [_get(u, None)[0] for u in urls]
    step.ok = sheet.exists() and sheet.stat().st_size > 0 and bool(urls)
    step.ok = step.ok and all(code == 200 for code in pages)
    step.lines += [f"$ {done.shown}", *(f"notice page: {u}" for u in urls), f"QR sheet: {sheet}"]
    step.facts.update(sheet=str(sheet), urls=urls, pages=pages)
    return step


def _get(url: str, token: str | None) -> tuple[int, bytes]:
    if not url.startswith(("http://", "https://")):
        return 0, b""
    req = urllib.request.Request(url)  # noqa: S310 - http(s) only, checked above
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except OSError:
        return 0, b""


def console(scene: Scene) -> Step:
    step = Step("console", "The console: a viewer and an operator sign in")
    tokens = {}
    for role in ("viewer", "operator"):
        out = scene.cli("web", "token", "create", "--tenant", TENANT, "--role", role,
                        "--label", f"demo {role}", "--expires", "1d")  # fmt: skip
        tokens[role] = out.stdout.strip().splitlines()[-1]
    checks = {role: _get(f"{scene.web_url}/api/v1/me", tok) for role, tok in tokens.items()}
    step.ok = all(code == 200 and role.encode() in body for role, (code, body) in checks.items())
    step.lines.append(f"dashboard: {scene.web_url}/console (sign in with a token below)")
    step.lines += [f"{role} token: {tok}" for role, tok in tokens.items()]
    step.lines.append("API check: GET /api/v1/me → "
                      + ", ".join(f"{r} {c}" for r, (c, _) in checks.items()))  # fmt: skip
    step.facts.update(tokens_work={r: c == 200 for r, (c, _) in checks.items()})
    return step
