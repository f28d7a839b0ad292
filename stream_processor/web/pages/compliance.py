"""The compliance panel (viewer and up): the firm's duties against live counts."""

from __future__ import annotations

import time

from aiohttp import web

from stream_processor.web.api.compliance import compliance_of
from stream_processor.web.auth import PRINCIPAL
from stream_processor.web.deps import DEPS
from stream_processor.web.pages.layout import e, pick_lang, shell

WORDS = {
    "title": ("合规", "Compliance"),
    "filing": ("人脸信息备案（10万人）", "Filing threshold (100,000 persons)"),
    "persons": ("存储人脸信息的人数", "Persons with stored face templates"),
    "templates": ("设备上的人脸模板", "Templates on devices"),
    "reached": ("达到日期", "Reached on"),
    "not_reached": ("未达到", "not reached"),
    "file": (
        "须在达到之日起30个工作日内向省级网信部门备案。",
        "File with the provincial cyberspace office within 30 working days of this date.",
    ),
    "pia": ("个人信息保护影响评估", "Personal-information impact assessment"),
    "missing": ("缺少评估：此处正在进行人脸识别", "MISSING: face recognition runs here"),
    "notices": ("告知覆盖", "Notice coverage"),
    "cameras": ("有告知的摄像头", "Cameras with a published notice"),
    "devices": ("已对应摄像头的设备", "Devices mapped to a registry camera"),
    "consent": ("同意（仅计数）", "Consent (counts only)"),
    "consenting": ("已同意居民", "Residents consenting"),
    "withdrawn": ("已撤回", "Withdrawn"),
    "minors": ("监护人同意的未成年人", "Minors with guardian consent"),
    "site": ("小区", "Site"),
}


async def compliance_page(request: web.Request) -> web.Response:
    lang, principal = pick_lang(request), request[PRINCIPAL]

    def w(key: str) -> str:
        zh, en = WORDS[key]
        return zh if lang == "zh" else en

    c = compliance_of(request.app[DEPS], principal.tenant)
    reached = (
        time.strftime("%Y-%m-%d", time.gmtime(c.threshold_reached_at_ms / 1000))
        if c.threshold_reached_at_ms
        else w("not_reached")
    )
    warn = f'<p class="warn">{w("file")}</p>' if c.threshold_reached_at_ms else ""
    pia_rows = "".join(
        f'<tr class="{"alarm" if s.pia_missing else ""}"><td>{e(s.site)}</td>'
        f"<td>{s.persons_with_templates}</td><td>"
        + (
            f"{e(s.pia.reference)} ({s.pia.date.isoformat()})"
            if s.pia
            else (
                f'<span class="alarm pia-missing">{w("missing")}</span>' if s.pia_missing else "–"
            )
        )
        + "</td></tr>"
        for s in c.sites
    )
    n = c.notices
    gaps = ", ".join(e(x) for x in n.cameras_without_notice + n.devices_unmapped)
    consent_rows = "".join(
        f"<tr><td>{e(s.site)}</td><td>{s.residents_consenting}</td><td>{s.residents_withdrawn}"
        f"</td><td>{s.minors_guardian_consent}</td></tr>"
        for s in c.consent
    )
    body = (
        f"<h1>{w('title')}</h1><h2>{w('filing')}</h2><table>"
        f'<tr><th>{w("persons")}</th><td id="persons">{c.persons_with_templates:,}'
        f" / {c.filing_threshold:,}</td></tr>"
        f"<tr><th>{w('templates')}</th><td>{c.templates_stored:,}</td></tr>"
        f'<tr><th>{w("reached")}</th><td id="reached">{reached}</td></tr></table>{warn}'
        f"<h2>{w('pia')}</h2><table><thead><tr><th>{w('site')}</th><th>{w('persons')}</th>"
        f"<th>{w('pia')}</th></tr></thead><tbody>{pia_rows}</tbody></table>"
        f"<h2>{w('notices')}</h2><table>"
        f'<tr><th>{w("cameras")}</th><td id="cameras">{n.cameras_with_notice} / {n.cameras}'
        "</td></tr>"
        f'<tr><th>{w("devices")}</th><td id="devices">{n.devices_mapped} / {n.devices}</td></tr>'
        f"</table>" + (f'<p class="warn">{gaps}</p>' if gaps else "") + f"<h2>{w('consent')}</h2>"
        f"<table><thead><tr><th>{w('site')}</th><th>{w('consenting')}</th>"
        f"<th>{w('withdrawn')}</th><th>{w('minors')}</th></tr></thead>"
        f"<tbody>{consent_rows}</tbody></table>"
    )
    return shell(request, w("title"), body, lang)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/compliance", compliance_page)
