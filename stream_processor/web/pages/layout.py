"""The console's page shell (zh/en), its words, and safe HTML helpers.

Pages are rendered on the server with today's numbers, so they read without
JavaScript; ``console.js`` then keeps them live from the event stream and
draws the charts with uPlot (served from /console/assets/, never a CDN).
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from stream_processor.notices.config import Lang
from stream_processor.web.auth import PRINCIPAL
from stream_processor.web.tokens import Role

T: dict[str, tuple[str, str]] = {
    "console": ("物业控制台", "Firm console"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "paste": ("粘贴您的访问令牌", "Paste your access token"),
    "overview": ("总览", "Overview"),
    "retention": ("保留规则", "Retention"),
    "compliance": ("合规", "Compliance"),
    "site": ("小区", "Site"),
    "gate": ("门岗", "Gate"),
    "gates": ("门岗", "Gates"),
    "per_min": ("每分钟事件", "Events / min"),
    "last_hour": ("近一小时", "Last hour"),
    "face_share": ("人脸占比", "Face share"),
    "denial": ("拒绝率", "Denial rate"),
    "discards": ("未存储（原因）", "Not stored (reason)"),
    "devices": ("设备 在线/离线", "Devices on/offline"),
    "keycards": ("待办门卡", "Open key cards"),
    "alarm": ("告警", "Alarm"),
    "device": ("设备", "Device"),
    "last_seen": ("最后在线", "Last seen"),
    "offline_since": ("离线自", "Offline since"),
    "unreachable": ("长时间失联", "Unreachable"),
    "outbox": ("待发队列", "Outbox"),
    "templates": ("人脸模板", "Templates"),
    "version": ("软件版本", "Software"),
    "fps": ("帧/秒", "Frames/s"),
    "latency": ("判定延迟 ms", "Decision ms"),
    "online": ("在线", "online"),
    "offline": ("离线", "offline"),
    "live": ("实时", "live"),
    "dry_run": ("试运行", "Dry run"),
    "apply": ("应用", "Apply"),
    "would_delete": ("将删除的已存储事件", "Stored events that would be deleted"),
    "total": ("合计", "Total"),
    "history": ("历史版本", "History"),
    "comment": ("变更说明", "Why this change"),
    "no_policy": ("尚未应用任何策略。", "No policy applied yet."),
    "applied": ("已应用版本", "Applied version"),
    "in_force": ("现行版本", "In force: version"),
    "kind": ("类型", "Kind"),
    "status": ("保留状态", "Retention status"),
    "oldest": ("最早事件", "Oldest"),
    "rule": ("规则", "Rule"),
    "events": ("事件数", "Events"),
    "none": ("无", "none"),
    "subject": ("数据主体", "Subject"),
    "erasure": ("删除请求", "Erasure requests"),
    "dead_letters": ("被拒输入（24小时）", "Refused input, last 24 h"),
    "consent": ("同意覆盖（仅计数）", "Consent coverage (counts only)"),
    "consenting": ("已同意居民", "Residents consenting"),
    "withdrawn": ("已撤回", "Withdrawn"),
    "minors": ("监护人同意的未成年人", "Minors with guardian consent"),
    "pending": ("处理中", "Pending"),
    "overdue": ("逾期", "Overdue"),
    "to_complete": ("完成用时（中位数）", "Time to complete (median)"),
    "withdrawals": ("待网关确认的同意撤回", "Consent withdrawals awaiting gates"),
}


def tr(key: str, lang: Lang) -> str:
    zh, en = T[key]
    return zh if lang == "zh" else en


def pick_lang(request: web.Request) -> Lang:
    asked = request.query.get("lang") or request.cookies.get("fg_lang")
    if asked in ("zh", "en"):
        return "zh" if asked == "zh" else "en"
    accept = request.headers.get("Accept-Language", "").strip().lower()
    return "en" if accept.startswith("en") else "zh"


HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
    ),
}


def e(value: object) -> str:
    return escape(str(value), quote=True)


def shell(
    request: web.Request, title: str, body: str, lang: Lang, status: int = 200
) -> web.Response:
    principal = request.get(PRINCIPAL)
    nav = ""
    if principal is not None:
        csrf = principal.session.csrf if principal.session else ""
        other = "en" if lang == "zh" else "zh"
        officer = (
            f'<a href="/console/keycards?lang={lang}">{tr("keycards", lang)}</a>'
            if principal.role.allows(Role.OPERATOR)
            else ""
        ) + (
            f'<a href="/console/subject?lang={lang}">{tr("subject", lang)}</a>'
            if principal.role is Role.PRIVACY_OFFICER
            else ""
        )
        nav = (
            f'<nav><a href="/console?lang={lang}">{tr("overview", lang)}</a>'
            f'<a href="/console/retention?lang={lang}">{tr("retention", lang)}</a>'
            f'<a href="/console/compliance?lang={lang}">{tr("compliance", lang)}</a>{officer}'
            f'<a href="{e(request.path)}?lang={other}">{"English" if lang == "zh" else "中文"}</a>'
            f'<span class="who">{e(principal.tenant)} · {e(principal.role.value)} · '
            f"{e(principal.token.label)}</span>"
            f'<form method="post" action="/console/sign-out" class="inline">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            f'<button type="submit" id="sign-out">{tr("sign_out", lang)}</button></form></nav>'
        )
    html = (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · facegate</title>"
        '<link rel="stylesheet" href="/console/assets/uPlot.min.css">'
        '<link rel="stylesheet" href="/console/assets/console.css">'
        '<script src="/console/assets/uPlot.iife.min.js" defer></script>'
        '<script src="/console/assets/console.js" defer></script>'
        f'</head><body data-lang="{lang}">{nav}<main>{body}</main></body></html>'
    )
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
    )


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"
