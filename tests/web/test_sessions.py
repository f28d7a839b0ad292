"""Browser sessions: sign in by pasting a token, cookie flags, CSRF on every form, sign-out;
and the live stream's one fan-out per tenant."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml

from tests.support.web import POLICY
from tests.web.conftest import ConsoleRig


async def sign_in(client: Any, secret: str) -> str:
    resp = await client.post("/console/sign-in", data={"token": secret}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    cookie = resp.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("fg_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
    assert "Secure" not in session  # plain HTTP in the test; https public URLs get Secure
    return session.split(";")[0].split("=", 1)[1]


def _csrf(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_sign_in_csrf_and_sign_out(console: ConsoleRig) -> None:
    doc = POLICY.format(tenant="acme", face="14d")

    async def go(client: Any) -> None:
        assert (await client.get("/console", allow_redirects=False)).status == 401
        bad = await client.post("/console/sign-in", data={"token": "fgt_nope"})
        assert bad.status == 401
        cookie = await sign_in(client, console.token("acme", "operator"))
        page = await client.get("/console")
        html = await page.text()
        assert page.status == 200 and "acme-operator" in html
        assert cookie not in html  # the session secret is never in a page
        csrf = _csrf(html)
        # A state-changing form without (or with a wrong) CSRF token: 401, nothing applied.
        for form in ({"policy": doc}, {"policy": doc, "csrf": "wrong"}):
            resp = await client.post("/console/retention/apply", data=form)
            assert resp.status == 401
        assert console.deps.policies.history("acme") == []
        for bad in ("[" * 5000, "tenant: acme\nretention: {face_match: {x: 1}}", "tenant: bolt"):
            resp = await client.post(
                "/console/retention/dry-run", data={"policy": bad, "csrf": csrf}
            )
            assert resp.status in (404, 422), (bad[:20], resp.status)
        resp = await client.post("/console/retention/dry-run", data={"policy": doc, "csrf": csrf})
        assert resp.status == 200 and 'id="dry-run-total">0<' in await resp.text()
        resp = await client.post(
            "/console/retention/apply", data={"policy": doc, "csrf": csrf}, allow_redirects=False
        )
        assert resp.status == 303
        assert console.deps.policies.history("acme")[-1].applied_by == "web:acme-operator"
        # The JSON API with the cookie needs the header too.
        body = {"document": yaml.safe_load(doc)}
        assert (await client.post("/api/v1/policy/dry-run", json=body)).status == 401
        ok = await client.post("/api/v1/policy/dry-run", json=body, headers={"X-CSRF-Token": csrf})
        assert ok.status == 200
        resp = await client.post("/console/sign-out", data={"csrf": csrf}, allow_redirects=False)
        assert resp.status == 303
        client.session.cookie_jar.update_cookies({"fg_session": cookie})  # replay the old cookie
        assert (await client.get("/console")).status == 401

    console.run(go)


def test_revoking_a_token_ends_its_sessions(console: ConsoleRig) -> None:
    async def go(client: Any) -> None:
        await sign_in(client, console.token("acme", "viewer"))
        assert (await client.get("/console")).status == 200
        tok = console.deps.tokens.authenticate(console.token("acme", "viewer"))
        console.deps.tokens.revoke(tok.id)
        assert (await client.get("/console")).status == 401
        assert (await client.get("/api/v1/overview")).status == 401

    console.run(go)


def test_viewer_cannot_apply_from_the_page(console: ConsoleRig) -> None:
    async def go(client: Any) -> None:
        await sign_in(client, console.token("acme", "viewer"))
        html = await (await client.get("/console/retention")).text()
        assert 'id="dry-run"' not in html  # no editor for a viewer
        assert (await client.get("/console/keycards")).status == 403
        assert (await client.get("/console/subject")).status == 403
        csrf = _csrf(html)
        resp = await client.post(
            "/console/retention/apply",
            data={"policy": POLICY.format(tenant="acme", face="1d"), "csrf": csrf},
        )
        assert resp.status == 403
        assert console.deps.policies.history("acme") == []

    console.run(go)


def test_one_fan_out_per_tenant(console: ConsoleRig) -> None:
    from stream_processor.web.live import HUB

    async def go(client: Any) -> None:
        # 20 dashboards of acme and 5 of bolt, each with a session of its own.
        streams = []
        book = console.deps.tokens
        for tenant, n in (("acme", 20), ("bolt", 5)):
            for _ in range(n):
                cookie, _ = book.open_session(book.authenticate(console.token(tenant, "viewer")))
                s = await client.get("/console/live", headers={"Cookie": f"fg_session={cookie}"})
                assert s.status == 200 and s.headers["Content-Type"] == "text/event-stream"
                streams.append((tenant, s))
        frames: dict[str, list[bytes]] = {"acme": [], "bolt": []}
        for tenant, s in streams:
            while True:
                line = await asyncio.wait_for(s.content.readline(), 5)
                if line.startswith(b"data: "):
                    frames[tenant].append(line)
                    break
        hub = client.server.app[HUB]
        assert set(hub.feeds) == {"acme", "bolt"}
        assert hub.feeds["acme"].listeners == 20 and hub.feeds["bolt"].listeners == 5
        # One overview per tenant per tick, whatever the number of dashboards.
        assert hub.feeds["acme"].frames <= 3 and hub.feeds["bolt"].frames <= 3
        assert all(b'"tenant":"acme"' in f for f in frames["acme"])
        assert all(b'"tenant":"bolt"' in f and b"north-garden" not in f for f in frames["bolt"])
        for _, s in streams:
            s.close()

    console.run(go)


def test_rate_limits_and_secure_cookie(console: ConsoleRig) -> None:
    from stream_processor.web.limits import SlidingWindowLimit

    console.deps.token_limit = SlidingWindowLimit(3, 60)
    console.deps.public_url = "https://console.example.com"

    async def go(client: Any) -> None:
        viewer = {"Authorization": f"Bearer {console.token('acme', 'viewer')}"}
        statuses = [(await client.get("/api/v1/me", headers=viewer)).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        resp = await client.get("/api/v1/me", headers=viewer)
        assert (await resp.json())["error"] == "rate_limited"
        # Another token has its own budget.
        other = {"Authorization": f"Bearer {console.token('acme', 'operator')}"}
        assert (await client.get("/api/v1/me", headers=other)).status == 200
        # Served behind https: the session cookie is Secure.
        resp = await client.post(
            "/console/sign-in",
            data={"token": console.token("bolt", "viewer")},
            allow_redirects=False,
        )
        cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith("fg_session="))
        assert "Secure" in cookie and "HttpOnly" in cookie
        # Guessing tokens at the sign-in form: limited per client address.
        codes = [
            (await client.post("/console/sign-in", data={"token": f"fgt_{i}"})).status
            for i in range(6)
        ]
        assert codes[:4] == [401] * 4 and codes[-1] == 429

    console.run(go)


def test_revocation_ends_an_open_live_stream(console: ConsoleRig) -> None:
    console.deps.live_recheck_s = 0.3

    async def go(client: Any) -> None:
        book = console.deps.tokens
        token = book.authenticate(console.token("acme", "viewer"))
        cookie, _ = book.open_session(token)
        stream = await client.get("/console/live", headers={"Cookie": f"fg_session={cookie}"})
        assert stream.status == 200
        while not (await asyncio.wait_for(stream.content.readline(), 5)).startswith(b"data: "):
            pass
        book.revoke(token.id)
        seen_after = 0
        while True:  # the server closes the stream within a recheck and a frame
            line = await asyncio.wait_for(stream.content.readline(), 5)
            if not line:
                break
            seen_after += line.startswith(b"data: ")
        assert seen_after <= 2

    console.run(go)


def test_operator_hands_over_a_card_from_the_page(console: ConsoleRig) -> None:
    mine = console.deps.keycards.request("acme", "north-garden", channel="web", unit="3-1201")
    theirs = console.deps.keycards.request("bolt", "south-bay", channel="web", unit="9-9")

    async def go(client: Any) -> None:
        await sign_in(client, console.token("acme", "operator"))
        html = await (await client.get("/console/keycards?lang=en")).text()
        assert "3-1201" in html and "9-9" not in html
        csrf = _csrf(html)
        # Another firm's request id: 404, and it stays open.
        resp = await client.post(f"/console/keycards/{theirs.id}/fulfil", data={"csrf": csrf})
        assert resp.status == 404
        # Without the CSRF token: 401, still open.
        assert (await client.post(f"/console/keycards/{mine.id}/fulfil", data={})).status == 401
        resp = await client.post(
            f"/console/keycards/{mine.id}/fulfil",
            data={"csrf": csrf, "card_ref": "C-77"},
            allow_redirects=False,
        )
        assert resp.status == 303
        assert console.deps.keycards.get(mine.id).status.value == "fulfilled"
        assert console.deps.keycards.get(theirs.id).status.value == "open"
        html = await (await client.get("/console/keycards?lang=en")).text()
        assert "No open requests." in html

    console.run(go)
