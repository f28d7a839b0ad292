"""What every console role reads: who am I, the firm overview, sites, gates, time series,
device health and retention status — always of the token's tenant only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from edge_agent.wire.bounds import MAX_TIME_MS
from edge_agent.wire.topics import ID_PATTERN
from stream_processor.errors import FacegateError
from stream_processor.store.base import AggregateKey
from stream_processor.web.api.spec import ID_SEGMENT, Call, Page, operation
from stream_processor.web.deps import WebDeps
from stream_processor.web.errors import ApiError
from stream_processor.web.overview import (
    MINUTE_MS,
    DeviceHealth,
    Overview,
    Series,
    SiteFigures,
    build_overview,
    device_health,
    rollup,
)
from stream_processor.web.tokens import Role

#: Longest time series one request may ask for (31 days).
MAX_RANGE_MS = 31 * 86_400_000


class Me(BaseModel):
    tenant: str
    role: str
    label: str
    expires_at_ms: int | None


class SiteList(BaseModel):
    sites: list[SiteFigures]
    next_offset: int | None


class GateView(BaseModel):
    site: str
    gate: str
    devices: list[DeviceHealth]
    per_minute: list[int] = Field(description="events per minute at this gate, the last hour")
    minute_ms: list[int]


class SeriesQuery(Page):
    since_ms: int = Field(
        ge=0, le=MAX_TIME_MS, description="start of the range (ms since the epoch, before 2100)"
    )
    until_ms: int | None = Field(
        None, ge=0, le=MAX_TIME_MS, description="end of the range; default now"
    )
    step: Literal["minute", "hour", "day"] = Field("minute", description="bucket size")
    by: str = Field(
        "kind",
        pattern=r"^(site|gate|kind|decision|outcome)(,(site|gate|kind|decision|outcome))*$",
        description="comma-separated group fields",
    )
    site: str | None = Field(None, pattern=ID_PATTERN)
    gate: str | None = Field(None, pattern=ID_PATTERN)
    kind: str | None = Field(None, pattern=r"^[a-z_]{1,32}$")
    decision: Literal["granted", "denied"] | None = None
    outcome: str | None = Field(None, pattern=r"^[a-z_]{1,32}$", description="stored or a reason")


class SeriesList(BaseModel):
    step: str
    series: list[Series]
    next_offset: int | None


class DeviceList(BaseModel):
    devices: list[DeviceHealth]
    next_offset: int | None


def registry_sites(deps: WebDeps, tenant: str) -> dict[str, list[str]]:
    """Sites and gates of the camera registry; none if there is no valid registry (the
    overview then shows the sites seen in events and device statuses; /healthz says why)."""
    out: dict[str, list[str]] = {}
    try:
        registry = deps.cameras.get()
    except FacegateError:
        return out
    for site in registry.sites:
        if site.tenant == tenant:
            out[site.site] = sorted({c.gate for c in site.cameras})
    return out


def overview_of(deps: WebDeps, tenant: str) -> Overview:
    """The tenant's overview, built at most once per ``deps.overview_ttl_s`` however many
    pages, API clients and live feeds ask: one store query per tenant per second."""
    now_s = deps.clock()
    cached = deps.overview_cache.get(tenant)
    if cached is not None and 0 <= now_s - cached[0] < deps.overview_ttl_s:
        return cached[1]
    built = _build_overview(deps, tenant)
    deps.overview_cache[tenant] = (now_s, built)
    return built


def _build_overview(deps: WebDeps, tenant: str) -> Overview:
    now = int(deps.clock() * 1000)
    counts: dict[AggregateKey, int] = {}
    if deps.store is not None:
        counts = deps.store.aggregates(tenant, now - now % MINUTE_MS - 60 * MINUTE_MS, now)
    devices = device_health(
        deps.devices.of_tenant(tenant), now,
        deps.devices.offline_after_s, deps.devices.unreachable_after_s,
    )  # fmt: skip
    keycards = {
        s.site: (s.open, s.oldest_age_s) for s in deps.keycards.open_summary() if s.tenant == tenant
    }
    return build_overview(tenant, now, registry_sites(deps, tenant), counts, devices, keycards)


def _site(call: Call, overview: Overview) -> SiteFigures:
    name = call.path("site")
    for s in overview.sites:
        if s.site == name:
            return s
    raise ApiError(404, "not_found", f"no site {name}")


def _next(page: Page, total: int) -> int | None:
    return page.offset + page.limit if page.offset + page.limit < total else None


@operation(
    "GET",
    "/api/v1/me",
    role=Role.VIEWER,
    tag="console",
    response=Me,
    summary="The token's tenant, role and label",
)
async def me(call: Call) -> Me:
    t = call.principal.token
    return Me(tenant=t.tenant, role=t.role.value, label=t.label, expires_at_ms=t.expires_at_ms)


@operation(
    "GET",
    "/api/v1/overview",
    role=Role.VIEWER,
    tag="console",
    response=Overview,
    summary="Firm overview: every site's figures of the last hour",
)
async def overview(call: Call) -> Overview:
    return overview_of(call.deps, call.tenant)


@operation(
    "GET",
    "/api/v1/sites",
    role=Role.VIEWER,
    tag="console",
    query=Page,
    response=SiteList,
    summary="Sites and gates with their figures",
)
async def sites(call: Call) -> SiteList:
    q: Page = call.query
    all_sites = overview_of(call.deps, call.tenant).sites
    return SiteList(
        sites=all_sites[q.offset : q.offset + q.limit], next_offset=_next(q, len(all_sites))
    )


@operation(
    "GET",
    "/api/v1/sites/{site:" + ID_SEGMENT + "}",
    role=Role.VIEWER,
    tag="console",
    response=SiteFigures,
    summary="One site's figures",
)
async def site(call: Call) -> SiteFigures:
    return _site(call, overview_of(call.deps, call.tenant))


@operation(
    "GET",
    "/api/v1/sites/{site:" + ID_SEGMENT + "}/gates/{gate:" + ID_SEGMENT + "}",
    role=Role.VIEWER,
    tag="console",
    response=GateView,
    summary="One gate: its devices and events per minute",
)
async def gate(call: Call) -> GateView:
    ov = overview_of(call.deps, call.tenant)
    figures, name = _site(call, ov), call.path("gate")
    if name not in figures.gates:
        raise ApiError(404, "not_found", f"no gate {name} at {figures.site}")
    per_minute = [0] * len(ov.minute_ms)
    if call.deps.store is not None and ov.minute_ms:
        first = ov.minute_ms[0]
        for k, n in call.deps.store.aggregates(
            call.tenant, first, ov.minute_ms[-1] + MINUTE_MS
        ).items():
            if k.site == figures.site and k.gate == name:
                per_minute[(k.minute_ms - first) // MINUTE_MS] += n
    devices = [
        d
        for d in device_health(
            call.deps.devices.of_tenant(call.tenant),
            ov.now_ms,
            call.deps.devices.offline_after_s,
            call.deps.devices.unreachable_after_s,
        )
        if d.site == figures.site and d.gate == name
    ]
    return GateView(
        site=figures.site, gate=name, devices=devices, per_minute=per_minute, minute_ms=ov.minute_ms
    )


@operation(
    "GET",
    "/api/v1/aggregates",
    role=Role.VIEWER,
    tag="console",
    query=SeriesQuery,
    response=SeriesList,
    summary="Per-minute aggregates as series: minute, hour or day steps",
)
async def aggregates(call: Call) -> SeriesList:
    q: SeriesQuery = call.query
    until = q.until_ms if q.until_ms is not None else int(call.deps.clock() * 1000)
    if until <= q.since_ms or until - q.since_ms > MAX_RANGE_MS:
        raise ApiError(422, "invalid", "until_ms must follow since_ms by at most 31 days")
    counts = call.deps.store.aggregates(call.tenant, q.since_ms, until) if call.deps.store else {}
    where = {
        f: v
        for f in ("site", "gate", "kind", "decision", "outcome")
        if (v := getattr(q, f)) is not None
    }
    series = rollup(counts, q.step, tuple(dict.fromkeys(q.by.split(","))), where)
    return SeriesList(
        step=q.step, series=series[q.offset : q.offset + q.limit], next_offset=_next(q, len(series))
    )


@operation(
    "GET",
    "/api/v1/devices",
    role=Role.VIEWER,
    tag="console",
    query=Page,
    response=DeviceList,
    summary="Device health: last seen, offline since, outbox",
)
async def devices(call: Call) -> DeviceList:
    q: Page = call.query
    now = int(call.deps.clock() * 1000)
    rows = device_health(
        call.deps.devices.of_tenant(call.tenant),
        now,
        call.deps.devices.offline_after_s,
        call.deps.devices.unreachable_after_s,
    )
    return DeviceList(devices=rows[q.offset : q.offset + q.limit], next_offset=_next(q, len(rows)))
