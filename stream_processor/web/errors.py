"""Errors of the web app: ``{"error", "detail"}`` JSON under /api, a short page elsewhere.

Handlers raise ``ApiError``; the ``errors`` middleware also turns aiohttp's own
refusals (unknown route, wrong method, oversized body) into the same JSON, and
an unexpected exception into a logged 500 that shows no internals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from html import escape

from aiohttp import web

from stream_processor.errors import FacegateError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


class ApiError(FacegateError):
    """A request refused with an HTTP status, a short error name and a sentence."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


def json_error(status: int, error: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


def _page_error(status: int, detail: str) -> web.Response:
    body = f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{escape(detail)}</p>"
    return web.Response(text=body, status=status, content_type="text/html")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    api = request.path.startswith("/api/")
    try:
        return await handler(request)
    except ApiError as exc:
        if api:
            return json_error(exc.status, exc.error, exc.detail)
        return _page_error(exc.status, exc.detail)
    except web.HTTPException as exc:
        if not api or exc.status < 400:
            raise
        error = _NAMES.get(exc.status, "error")
        return json_error(exc.status, error, exc.reason)
    except Exception:
        if not api:
            raise
        log.exception("unexpected error in %s %s", request.method, request.path)
        return json_error(500, "internal", "unexpected error; see the server log")
