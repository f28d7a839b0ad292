"""The dashboard pages: firm overview, site, gate (viewer and up; the tenant of the session)."""

from __future__ import annotations

import time

from aiohttp import web

from stream_processor.notices.config import Lang
from stream_processor.web.api.console import overview_of
from stream_processor.web.auth import PRINCIPAL
from stream_processor.web.deps import DEPS, WebDeps
from stream_processor.web.errors import ApiError
from stream_processor.web.overview import DeviceHealth, Overview, SiteFigures, device_health
from stream_processor.web.pages.layout import e, pct, pick_lang, shell, tr


def _when(ms: int | None) -> str:
    return "–" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _site_row(s: SiteFigures, lang: Lang) -> str:
    per_min = sum(s.events_last_minute.values())
    discards = ", ".join(f"{e(k)} {n}" for k, n in s.discards.items()) or "–"
    alarm = f'<span class="alarm">{tr("alarm", lang)}</span>' if s.outbox_alarm else ""
    cells = [
        f'<a href="/console/sites/{e(s.site)}?lang={lang}" class="site-link">{e(s.site)}</a>',
        f'<span data-f="per_min">{per_min}</span>',
        f'<span data-f="hour">{s.events_last_hour}</span>',
        f'<span data-f="face">{pct(s.face_share)}</span>',
        f'<span data-f="denial">{pct(s.denial_rate)}</span>',
        f'<span data-f="discards">{discards}</span>',
        f'<span data-f="devices">{s.devices_online}/{s.devices_offline}</span> {alarm}',
        f'<span data-f="keycards">{s.open_keycards}</span>',
    ]
    return f'<tr data-site="{e(s.site)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _overview_table(ov: Overview, lang: Lang, only: str | None = None) -> str:
    heads = [
        "site",
        "per_min",
        "last_hour",
        "face_share",
        "denial",
        "discards",
        "devices",
        "keycards",
    ]
    rows = "".join(_site_row(s, lang) for s in ov.sites if only is None or s.site == only)
    return (
        '<table class="sites"><thead><tr>'
        + "".join(f"<th>{tr(h, lang)}</th>" for h in heads)
        + f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _unreachable(d: DeviceHealth, lang: Lang) -> str:
    return f' <span class="alarm">{tr("unreachable", lang)}</span>' if d.unreachable else ""


def _devices_table(devs: list[DeviceHealth], lang: Lang) -> str:
    heads = [
        "gate",
        "device",
        "last_seen",
        "offline_since",
        "outbox",
        "templates",
        "fps",
        "latency",
        "version",
    ]
    rows = "".join(
        f'<tr class="{"ok" if d.online else "alarm"}"><td>{e(d.gate)}</td><td>{e(d.device)}</td>'
        f"<td>{_when(d.last_seen_ms)}</td><td>{_when(d.offline_since_ms)}"
        f"{_unreachable(d, lang)}</td>"
        f"<td>{d.outbox_depth} ({d.oldest_queued_age_s:.0f}s)</td><td>{d.gallery_templates}</td>"
        f"<td>{d.frames_per_s:.1f}</td><td>{d.decision_latency_ms:.0f}</td>"
        f"<td>{e(d.software_version)}</td></tr>"
        for d in devs
    )
    return (
        f"<h2>{tr('devices', lang)}</h2><table><thead><tr>"
        + "".join(f"<th>{tr(h, lang)}</th>" for h in heads)
        + f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _chart(title: str, ov: Overview, site: str | None) -> str:
    return (
        f'<section class="chart"><h2>{e(title)}</h2>'
        f'<div class="uplot-box" data-chart="{e(site or "*")}"></div></section>'
    )


def _erasure_box(deps: WebDeps, tenant: str, lang: Lang) -> str:
    if deps.erasures is None:
        return ""
    now = int(deps.clock() * 1000)
    es = deps.erasures.of_tenant(tenant, now, deps.erasure_sla_s, 0, 1)
    median = "–" if es.median_completion_s is None else f"{es.median_completion_s / 3600:.1f} h"
    overdue = f'<span class="alarm">{es.overdue}</span>' if es.overdue else "0"
    return (
        f"<h2>{tr('erasure', lang)}</h2><table><tr><th>{tr('pending', lang)}</th>"
        f'<td id="erasure-pending">{es.pending}</td><th>{tr("overdue", lang)} '
        f"({es.sla_s // 86400} d)</th><td>{overdue}</td><th>{tr('to_complete', lang)}</th>"
        f"<td>{median}</td></tr></table>" + _withdrawal_box(deps, tenant, lang)
    )


def _withdrawal_box(deps: WebDeps, tenant: str, lang: Lang) -> str:
    assert deps.erasures is not None
    ws = deps.erasures.withdrawals_of(tenant, int(deps.clock() * 1000), deps.withdrawal_alarm_s)
    overdue = f'<span class="alarm">{ws.overdue}</span>' if ws.overdue else "0"
    return (
        f"<h2>{tr('withdrawals', lang)}</h2><table><tr><th>{tr('pending', lang)}</th>"
        f'<td id="withdrawals-pending">{ws.pending}</td><th>{tr("overdue", lang)} '
        f'({ws.alarm_after_s // 60} min)</th><td id="withdrawals-overdue">{overdue}</td>'
        "</tr></table>"
    )


def _firm_box(deps: WebDeps, tenant: str, lang: Lang) -> str:
    """Dead letters of the last 24 h by reason, and consent coverage per site (counts)."""
    report = deps.dead_letters.report(tenant, int(deps.clock() * 1000), 24)
    reasons = ", ".join(f"{e(r.reason)} {r.letters}" for r in report.by_reason) or "–"
    consent = "".join(
        f"<tr><td>{e(c.site)}</td><td>{c.residents_consenting}</td><td>{c.residents_withdrawn}"
        f"</td><td>{c.minors_guardian_consent}</td></tr>"
        for c in deps.consent.of_tenant(tenant)
    )
    return (
        f"<h2>{tr('dead_letters', lang)}</h2><p>"
        f'<span id="dead-letters">{report.total}</span> · {reasons}</p>'
        f"<h2>{tr('consent', lang)}</h2><table><thead><tr><th>{tr('site', lang)}</th>"
        f"<th>{tr('consenting', lang)}</th><th>{tr('withdrawn', lang)}</th>"
        f"<th>{tr('minors', lang)}</th></tr></thead><tbody>{consent}</tbody></table>"
    )


async def overview_page(request: web.Request) -> web.Response:
    lang, principal, deps = pick_lang(request), request[PRINCIPAL], request.app[DEPS]
    ov = overview_of(deps, principal.tenant)
    body = (
        f'<h1>{tr("overview", lang)} <small class="live" id="live">●</small></h1>'
        + _chart(tr("per_min", lang), ov, None)
        + _overview_table(ov, lang)
        + _erasure_box(deps, principal.tenant, lang)
        + _firm_box(deps, principal.tenant, lang)
    )
    return shell(request, tr("overview", lang), body, lang)


def _own_site(ov: Overview, site: str) -> SiteFigures:
    for s in ov.sites:
        if s.site == site:
            return s
    raise ApiError(404, "not_found", f"no site {site}")


def _devices_of(deps: WebDeps, tenant: str, now_ms: int, site: str) -> list[DeviceHealth]:
    devices = deps.devices
    health = device_health(
        devices.of_tenant(tenant), now_ms, devices.offline_after_s, devices.unreachable_after_s
    )
    return [d for d in health if d.site == site]


async def site_page(request: web.Request) -> web.Response:
    lang, principal, deps = pick_lang(request), request[PRINCIPAL], request.app[DEPS]
    ov = overview_of(deps, principal.tenant)
    s = _own_site(ov, request.match_info["site"])
    gates = "".join(
        f'<li><a class="gate-link" href="/console/sites/{e(s.site)}/gates/{e(g)}?lang={lang}">'
        f"{e(g)}</a></li>"
        for g in s.gates
    )
    devs = _devices_of(deps, principal.tenant, ov.now_ms, s.site)
    body = (
        f'<h1>{tr("site", lang)} {e(s.site)} <small class="live" id="live">●</small></h1>'
        + _chart(tr("per_min", lang), ov, s.site)
        + _overview_table(ov, lang, only=s.site)
        + f'<h2>{tr("gates", lang)}</h2><ul class="gates">{gates}</ul>'
        + _devices_table(devs, lang)
    )
    return shell(request, f"{tr('site', lang)} {s.site}", body, lang)


async def gate_page(request: web.Request) -> web.Response:
    lang, principal, deps = pick_lang(request), request[PRINCIPAL], request.app[DEPS]
    ov = overview_of(deps, principal.tenant)
    s = _own_site(ov, request.match_info["site"])
    gate = request.match_info["gate"]
    if gate not in s.gates:
        raise ApiError(404, "not_found", f"no gate {gate}")
    devs = [d for d in _devices_of(deps, principal.tenant, ov.now_ms, s.site) if d.gate == gate]
    body = (
        f'<h1>{tr("gate", lang)} <a href="/console/sites/{e(s.site)}?lang={lang}">{e(s.site)}</a>'
        f' / <span id="gate-name">{e(gate)}</span></h1>' + _devices_table(devs, lang)
    )
    return shell(request, f"{tr('gate', lang)} {gate}", body, lang)


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console")


def add_routes(app: web.Application) -> None:
    seg = "[a-z0-9][a-z0-9-]{0,62}"
    app.router.add_get("/", root)
    app.router.add_get("/dashboard", root)
    app.router.add_get("/console", overview_page)
    app.router.add_get("/console/sites/{site:" + seg + "}", site_page)
    app.router.add_get("/console/sites/{site:" + seg + "}/gates/{gate:" + seg + "}", gate_page)
