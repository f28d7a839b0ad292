"""Headers every answer carries, and which address a request really comes from.

Handlers set their own Content-Security-Policy where a page needs more than
nothing (scripts, styles); everything else gets the strictest one. HSTS is
sent only on TLS: over plain HTTP it would be ignored, and it must never pin
a browser to HTTPS for a host that does not serve it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from stream_processor.web.deps import DEPS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_CSP = "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"
_FORWARDED_HTTPS: web.RequestKey[bool] = web.RequestKey("facegate_forwarded_https", bool)
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def security_headers(secure: bool, headers: dict[str, str]) -> dict[str, str]:
    """The headers to add to an answer that already carries ``headers`` (pure)."""
    added = {k: v for k, v in _ALWAYS.items() if k not in headers}
    csp = headers.get("Content-Security-Policy")
    if csp is None:
        added["Content-Security-Policy"] = DEFAULT_CSP
    elif "frame-ancestors" not in csp:
        added["Content-Security-Policy"] = f"{csp.rstrip('; ')}; frame-ancestors 'none'"
    if secure:
        added["Strict-Transport-Security"] = HSTS
    return added


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    ip = _address(address)
    return ip is not None and any(ip in net for net in trusted)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client a rate limit should count (pure).

    ``X-Forwarded-For`` is believed only as far as trusted proxies appended to it:
    read from the right, the first hop that is not a trusted proxy is the client.
    Anything left of it was written by the client and may be forged; an entry that
    is not an address stops the walk at the proxy that passed it on.
    """
    if not _trusted(peer, trusted):
        return peer
    client = peer
    hops = [h for header in forwarded_for for h in header.split(",")]
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:
            return client
        client = str(ip)
        if not any(ip in net for net in trusted):
            return client
    return client


@web.middleware
async def real_client(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rewrite the request's remote (and scheme) from a trusted proxy's headers."""
    trusted = request.app[DEPS].trusted_proxies
    peer = request.remote or "unknown"
    if not trusted or not _trusted(peer, trusted):
        return await handler(request)
    remote = client_address(peer, request.headers.getall("X-Forwarded-For", []), trusted)
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    scheme = proto if proto in ("http", "https") else request.scheme
    # The response is prepared against the request the server made, not this clone.
    request[_FORWARDED_HTTPS] = scheme == "https"
    return await handler(request.clone(remote=remote, scheme=scheme))


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: also reaches error answers and static files."""
    secure = request.scheme == "https" or request.get(_FORWARDED_HTTPS, False)
    response.headers.update(security_headers(secure, dict(response.headers)))
