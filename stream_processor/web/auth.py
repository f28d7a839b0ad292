"""Who is asking: a bearer token (API clients) or a session cookie (browsers), per request.

Every ``/api/v1`` path but the OpenAPI document, and every ``/console`` page
but sign-in and the static assets, needs a valid token or session; a browser
session's state-changing request also needs its CSRF token (header
``X-CSRF-Token`` or form field ``csrf``). Bearer requests carry no ambient
credential a foreign page could ride on, so they need none. Each token is
rate-limited on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from stream_processor.web.deps import DEPS
from stream_processor.web.errors import ApiError, json_error
from stream_processor.web.tokens import Role, Session, Token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "fg_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC = frozenset({"/api/v1/openapi.json", "/console/sign-in"})


@dataclass(frozen=True, slots=True)
class Principal:
    token: Token
    session: Session | None

    @property
    def tenant(self) -> str:
        return self.token.tenant

    @property
    def role(self) -> Role:
        return self.token.role


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("facegate_principal", Principal)


def _guarded(path: str) -> bool:
    if path in _PUBLIC or path.startswith("/console/assets/"):
        return False
    return path.startswith(("/api/v1/", "/console"))


def _refuse(request: web.Request, status: int, error: str, detail: str) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return json_error(status, error, detail)
    from stream_processor.web.pages.signin import sign_in_page

    return sign_in_page(request, status=status, message=detail)


async def _csrf_given(request: web.Request) -> str | None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        value = (await request.post()).get("csrf")
        given = value if isinstance(value, str) else None
    return given


def resolve(request: web.Request) -> Principal | None:
    """The principal of a request, or None (no, unknown, revoked or expired credential)."""
    tokens = request.app[DEPS].tokens
    auth = request.headers.get("Authorization")
    if auth is not None:
        scheme, _, secret = auth.partition(" ")
        token = tokens.authenticate(secret.strip()) if scheme.lower() == "bearer" else None
        return Principal(token, None) if token else None
    cookie = request.cookies.get(SESSION_COOKIE)
    session = tokens.session(cookie) if cookie else None
    return Principal(session.token, session) if session else None


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _guarded(request.path):
        return await handler(request)
    principal = resolve(request)
    if principal is None:
        return _refuse(request, 401, "unauthorized", "a valid token or session is required")
    if not request.app[DEPS].token_limit.allow(principal.token.id):
        return _refuse(request, 429, "rate_limited", "too many requests for this token")
    if principal.session is not None and request.method not in _SAFE:
        if not principal.session.csrf_ok(await _csrf_given(request)):
            return _refuse(request, 401, "csrf", "missing or wrong CSRF token")
    request[PRINCIPAL] = principal
    return await handler(request)


def require(request: web.Request, role: Role) -> Principal:
    """The request's principal if its role reaches ``role``; else 403."""
    principal = request[PRINCIPAL]
    if not principal.role.allows(role):
        raise ApiError(403, "forbidden", f"needs role {role.value}")
    return principal
