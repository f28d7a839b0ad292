"""No camera registry file yet (a fresh install): the web app is healthy and says that no
camera is registered and how to register one; the API lists no notices with 200. A
registry that goes missing while serving keeps its notices (and /healthz says so)."""

from __future__ import annotations

from typing import Any

from stream_processor.notices.config import RegistryFile
from tests.web.conftest import A_SITE, ConsoleRig, auth, two_firm_registry


def test_a_missing_registry_is_an_empty_state_not_a_server_error(console: ConsoleRig) -> None:
    path = console.deps.cameras.path
    path.unlink()
    console.deps.cameras = RegistryFile(path)  # a fresh start without the file

    async def go(client: Any) -> None:
        health = await client.get("/healthz")
        assert health.status == 200
        assert await health.json() == {"status": "ok", "cameras": "none registered yet"}

        listed = await client.get(
            "/api/v1/notices", headers=auth(console.token("acme", "operator"))
        )
        assert listed.status == 200
        assert (await listed.json())["notices"] == []

        page = await client.get(f"/notice/acme/{A_SITE}?lang=en")
        assert page.status == 404
        text = await page.text()
        assert "No cameras are registered yet" in text
        assert "facegate notice validate-config" in text
        zh = await (await client.get(f"/notice/acme/{A_SITE}/gate-main-1?lang=zh")).text()
        assert "尚未登记任何摄像头" in zh

        # The operator writes the registry: it is read at the next request, no restart.
        two_firm_registry(path)
        assert (await client.get(f"/notice/acme/{A_SITE}/gate-main-1")).status == 200
        assert await (await client.get("/healthz")).json() == {"status": "ok"}

        # Removed while serving: the cameras still stand, their notices stay up.
        path.unlink()
        assert (await client.get(f"/notice/acme/{A_SITE}/gate-main-1")).status == 200
        degraded = await client.get("/healthz")
        assert degraded.status == 503 and (await degraded.json())["status"] == "degraded"

    console.run(go)
