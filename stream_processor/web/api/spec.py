"""Declared operations of ``/api/v1``: one place says path, role, query, body and response.

``operation(...)`` registers a handler with pydantic models for its query,
body and response. The same declarations route the requests (strict parsing:
unknown fields and wrong types refused, body size limited) and generate the
OpenAPI 3.1 document served at ``/api/v1/openapi.json`` — the document cannot
drift from the code.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema

from edge_agent.wire.topics import ID_PATTERN
from stream_processor.web.auth import Principal, require
from stream_processor.web.deps import DEPS, WebDeps
from stream_processor.web.errors import ApiError
from stream_processor.web.tokens import Role

#: Largest request body the API reads (the app refuses larger ones before they are read).
MAX_BODY = 16 * 1024
ID_SEGMENT = ID_PATTERN.strip("^$")
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def path_params(path: str) -> tuple[str, list[tuple[str, str]]]:
    """An aiohttp route path → (the OpenAPI path, [(name, regex)]); regexes may hold braces."""
    out, params, i = [], [], 0
    while i < len(path):
        if path[i] != "{":
            out.append(path[i])
            i += 1
            continue
        depth, j = 1, i + 1
        while depth:
            depth += {"{": 1, "}": -1}.get(path[j], 0)
            j += 1
        name, _, regex = path[i + 1 : j - 1].partition(":")
        params.append((name, regex or "[^/]+"))
        out.append("{" + name + "}")
        i = j
    return "".join(out), params


class Strict(BaseModel):
    """Request models: unknown fields and type coercions refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Page(Strict):
    """Pagination of every list: ``offset`` into the list, ``limit`` items (≤ 500)."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
    offset: int = Field(0, ge=0, le=1_000_000, description="items to skip")
    limit: int = Field(100, ge=1, le=500, description="items to return")


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the principal, the parsed query and body, the dependencies."""

    request: web.Request
    principal: Principal
    deps: WebDeps
    query: Any
    body: Any

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    def path(self, name: str) -> str:
        return self.request.match_info[name]


Result = BaseModel | tuple[int, BaseModel]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    handler: Callable[[Call], Awaitable[Result]]
    role: Role
    summary: str
    tag: str
    response: type[BaseModel]
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    status: int


OPERATIONS: list[Operation] = []


def operation(
    method: str,
    path: str,
    *,
    role: Role,
    summary: str,
    tag: str,
    response: type[BaseModel],
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    status: int = 200,
) -> Callable[[Callable[[Call], Awaitable[Result]]], Callable[[Call], Awaitable[Result]]]:
    def register(fn: Callable[[Call], Awaitable[Result]]) -> Callable[[Call], Awaitable[Result]]:
        OPERATIONS.append(
            Operation(method, path, fn, role, summary, tag, response, query, body, status)
        )
        return fn

    return register


def _validation_detail(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
    if not request.body_exists:  # no body at all: the model's defaults, if it has them
        return _validate(model, {})
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"body is not JSON: {exc}") from exc
    except RecursionError as exc:  # json's parser recurses per nesting level
        raise ApiError(400, "bad_json", "body nested too deeply") from exc
    if not isinstance(doc, dict):
        raise ApiError(400, "bad_json", "body must be a JSON object")
    return _validate(model, doc)


def _validate(model: type[BaseModel], doc: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ApiError(422, "invalid", _validation_detail(exc)) from exc


def _parse_query(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    given = {k: v for k, v in request.query.items()}
    if len(given) != len(request.query):
        raise ApiError(400, "bad_query", "a query parameter is repeated")
    if model is None:
        if given:
            raise ApiError(422, "invalid", f"unknown query parameters {sorted(given)}")
        return None
    try:
        # Query strings are text: the model coerces (its config is not strict).
        return model.model_validate(given)
    except ValidationError as exc:
        raise ApiError(422, "invalid", _validation_detail(exc)) from exc


def _handler(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = require(request, op.role)
        query = _parse_query(request, op.query)
        body = await _parse_body(request, op.body) if op.body is not None else None
        if op.body is None and (request.content_length or 0) > 0:
            raise ApiError(400, "unexpected_body", "this endpoint takes no body")
        result = await op.handler(Call(request, principal, request.app[DEPS], query, body))
        status, model = result if isinstance(result, tuple) else (op.status, result)
        # A firm's figures: never kept by a shared cache or the browser's back button.
        return web.json_response(model.model_dump(mode="json"), status=status, headers=_NO_STORE)

    return handle


def add_routes(app: web.Application) -> None:
    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, _handler(op))
    app.router.add_get("/api/v1/openapi.json", _openapi)


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared operation."""
    models: set[type[BaseModel]] = {ErrorBody}
    for op in OPERATIONS:
        models.update(m for m in (op.response, op.body) if m is not None)
    keyed, defs = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    ref = {m: keyed[(m, "validation")] for m in models}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        path, _ = path_params(op.path)
        paths.setdefault(path, {})[op.method.lower()] = _describe(op, ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": "facegate console API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "fg_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _describe(op: Operation, ref: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^{regex}$"},
        }
        for name, regex in path_params(op.path)[1]
    ]
    if op.query is not None:
        schema = op.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": {k: v for k, v in prop.items() if k != "title"},
                    "description": prop.get("description", ""),
                }
            )
    error = {"content": {"application/json": {"schema": ref[ErrorBody]}}}
    out: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": f"{op.method.lower()}_{op.handler.__name__}",
        "description": f"Needs role {op.role.value} or higher.",
        "parameters": params,
        "responses": {
            str(op.status): {
                "description": "success",
                "content": {"application/json": {"schema": ref[op.response]}},
            },
            "4XX": {"description": "refused; see error and detail", **error},
        },
    }
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref[op.body]}},
        }
    return out


class ErrorBody(BaseModel):
    error: str = Field(description="short machine-readable name of the refusal")
    detail: str = Field(description="what was wrong, in one sentence")
