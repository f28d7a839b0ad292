"""``/api/v1``: the console's JSON API (tenant-scoped, role-checked, documented by OpenAPI).

spec.py      operation declarations → routes and the OpenAPI 3.1 document
console.py   me, overview, sites, gates, aggregates, devices
policy.py    policy show/history/dry run/apply, retention status
keycards.py  key-card requests
"""

from aiohttp import web

from stream_processor.web.api import (  # noqa: F401 - they declare their operations
    compliance,
    console,
    keycards,
    policy,
    rights,
    subject,
)
from stream_processor.web.api.spec import add_routes as _add_routes
from stream_processor.web.api.spec import openapi_document


def add_routes(app: web.Application) -> None:
    _add_routes(app)


__all__ = ["add_routes", "openapi_document"]
