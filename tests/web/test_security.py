"""Security headers on every answer, HSTS only on TLS, and whose address a rate limit counts."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from stream_processor.errors import ConfigError
from stream_processor.web.app import create_app
from stream_processor.web.security import client_address
from stream_processor.web.settings import WebSettings
from stream_processor.web.tls import server_context
from tests.conftest import free_ports
from tests.web.conftest import ConsoleRig

PROXIES = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("127.0.0.1/32"))
EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _checked(resp: aiohttp.ClientResponse) -> None:
    for name, value in EXPECTED.items():
        assert resp.headers.get(name) == value, (resp.url, name)
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], resp.url


def test_every_answer_carries_the_headers_and_no_hsts_over_http(console: ConsoleRig) -> None:
    async def scenario(client: Any) -> None:
        for path in ("/healthz", "/console/sign-in", "/notice/acme/north-garden", "/nowhere"):
            resp = await client.get(path)
            _checked(resp)
            assert "Strict-Transport-Security" not in resp.headers
        api = await client.get("/api/v1/devices")  # refused: the error answer too
        assert api.status == 401
        _checked(api)
        assert (
            "script-src 'self'"
            in (await client.get("/console/sign-in")).headers["Content-Security-Policy"]
        )  # a page's own policy is kept, not replaced

    console.run(scenario)


async def _sign_in_statuses(client: Any, forwarded: list[str]) -> list[int]:
    return [
        (
            await client.post(
                "/console/sign-in",
                data={"token": "fgt_guess"},
                headers={"X-Forwarded-For": ip} if ip else {},
            )
        ).status
        for ip in forwarded
    ]


def test_forged_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit(
    console: ConsoleRig,
) -> None:
    # No trusted proxy configured: a guesser rotating X-Forwarded-For is one client.
    async def scenario(client: Any) -> None:
        statuses = await _sign_in_statuses(client, [f"198.51.100.{i}" for i in range(6)])
        assert statuses[:5] == [401] * 5 and statuses[5] == 429

    console.run(scenario)


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    console: ConsoleRig,
) -> None:
    console.deps.trusted_proxies = PROXIES  # the test client's peer is 127.0.0.1

    async def scenario(client: Any) -> None:
        others = await _sign_in_statuses(client, [f"198.51.100.{i}" for i in range(6)])
        assert others == [401] * 6
        # The real client behind the proxy is limited, however it prefixes the header.
        forged = [f"203.0.113.{i}, 192.0.2.7" for i in range(6)]
        statuses = await _sign_in_statuses(client, forged)
        assert statuses[:5] == [401] * 5 and statuses[5] == 429

    console.run(scenario)


def test_forwarded_proto_from_a_trusted_proxy_turns_hsts_on(console: ConsoleRig) -> None:
    async def scenario(client: Any) -> None:
        head = {"X-Forwarded-Proto": "https"}
        assert (
            "Strict-Transport-Security" not in (await client.get("/healthz", headers=head)).headers
        )
        console.deps.trusted_proxies = PROXIES
        resp = await client.get("/healthz", headers=head)
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")

    console.run(scenario)


@given(
    forged=st.lists(st.ip_addresses().map(str), max_size=4),
    client=st.ip_addresses(v=4).filter(lambda ip: ip not in PROXIES[0] and not ip.is_loopback),
    proxies=st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2", "127.0.0.1"]), max_size=3),
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    forged: list[str], client: ipaddress.IPv4Address, proxies: list[str]
) -> None:
    header = ", ".join([*forged, str(client), *proxies])
    assert client_address("10.0.0.9", [header], PROXIES) == str(client)
    # The same header from a peer that is no trusted proxy names nobody but the peer.
    assert client_address("192.0.2.50", [header], PROXIES) == "192.0.2.50"


def test_a_garbage_hop_stops_at_the_proxy_that_passed_it() -> None:
    assert client_address("10.0.0.9", ["203.0.113.5, not-an-ip, 10.0.0.3"], PROXIES) == "10.0.0.3"
    assert client_address("10.0.0.9", [], PROXIES) == "10.0.0.9"


def test_tls_with_the_project_ca_sends_hsts(console: ConsoleRig, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    settings = WebSettings(tls=True, public_url=f"https://127.0.0.1:{port}")
    context = server_context(settings, tmp_path / "state", "127.0.0.1")
    ca = tmp_path / "state" / "secrets" / "tls" / "ca.crt"
    assert (ca.parent / "web.key").stat().st_mode & 0o077 == 0

    async def go() -> None:
        runner = web.AppRunner(create_app(console.deps))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        try:
            trust = ssl.create_default_context(cafile=str(ca))
            async with aiohttp.ClientSession() as session:
                async with session.get(f"https://127.0.0.1:{port}/healthz", ssl=trust) as resp:
                    assert resp.status == 200
                    _checked(resp)
                    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        finally:
            await runner.cleanup()

    asyncio.run(go())


def test_an_unreadable_operator_certificate_is_a_config_error(tmp_path: Path) -> None:
    settings = WebSettings(tls=True, tls_cert_path=tmp_path / "no.crt", tls_key_path=tmp_path / "k")
    with pytest.raises(ConfigError, match="web TLS: cannot load"):
        server_context(settings, tmp_path, "127.0.0.1")
    with pytest.raises(ValueError, match="go together"):
        WebSettings(tls=True, tls_cert_path=tmp_path / "no.crt")
