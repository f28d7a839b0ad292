"""The notice page: one camera, phone-first, in Chinese or English (pure string rendering).

Everything is escaped; no script, no external resource, nothing tracked.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stream_processor.notices.config import Contact, Lang, Party, SiteNotice, Text
from stream_processor.notices.view import NoticeContent, RetentionRow, notice_path

L: dict[str, tuple[str, str]] = {
    "title": ("摄像头告知", "Camera notice"),
    "camera": ("摄像头", "Camera"),
    "location": ("位置", "Location"),
    "installed_on": ("安装日期", "Installed on"),
    "operator": ("运营方（个人信息处理者）", "Operated by (personal information handler)"),
    "installer": ("安装方", "Installed by"),
    "privacy_contact": ("个人信息保护联系人", "Privacy contact"),
    "purposes": ("使用目的", "Purposes"),
    "legal_basis": ("法律依据", "Legal basis"),
    "on_device": ("在设备上处理的内容", "What is processed on the device"),
    "on_device_face": (
        "人脸检测与比对只在本门禁设备上完成。设备只保存已单独同意的住户的人脸特征（加密存储；"
        "未满14周岁者须监护人同意）。照片和人脸特征从不离开设备。",
        "Face detection and matching happen only on this gate device. It holds face templates "
        "only of residents who gave separate consent (encrypted; a guardian consents for a "
        "child under 14). Images and face templates never leave the device.",
    ),
    "on_device_card": (
        "本设备不做人脸识别，只读取门禁卡或密码。",
        "This device does no face recognition; it reads key cards or PINs only.",
    ),
    "leaves": ("离开设备的内容", "What leaves the device"),
    "leaves_text": (
        "仅匿名化的通行事件：本小区专用的假名编号、结果、门、时间。不含姓名、身份证号、照片或人脸特征；"
        "未识别的人脸只计数，不保存。",
        "Only anonymized passage events: a pseudonym used at this site only, the outcome, the "
        "gate and the time. No name, ID number, photo or face template; unrecognised faces "
        "are counted, never stored.",
    ),
    "storage": ("事件存储位置", "Where events are stored"),
    "retention": ("保存期限（当前生效的规则）", "How long events are kept (rules in force now)"),
    "kind": ("事件", "Event"),
    "purpose": ("目的", "Purpose"),
    "kept": ("保存", "Kept for"),
    "not_stored": ("不保存，仅计数", "not stored, counted only"),
    "no_rule": ("无生效规则，不保存", "no rule in force, not stored"),
    "keycard": ("不想刷脸？申请门禁卡", "Prefer not to use your face? Get a key card"),
    "keycard_note": (
        "刷脸从来不是进门的唯一方式。您可以随时申请门禁卡，不会因此受到任何不利对待。",
        "Face recognition is never the only way in. You can ask for a key card at any time, "
        "and you will not be treated any worse for it.",
    ),
    "keycard_form": ("在线申请门禁卡", "Ask for a key card online"),
    "unit": ("房号", "Flat / unit"),
    "contact_field": ("联系电话或邮箱", "Phone or e-mail"),
    "send": ("提交申请", "Send request"),
    "withdraw": ("撤回同意", "Withdraw your consent"),
    "erasure": ("要求删除您的数据", "Ask for your data to be erased"),
    "erasure_note": (
        "删除无需您证明任何风险。完成后您会收到一份带签名的回执，任何人（包括法院或公证处）都可以用公开的"
        "审计日志独立核验。",
        "You need not show any risk to ask. When the erasure is done you get a signed receipt "
        "that anyone — a court or a notary too — can check against the published audit log.",
    ),
    "verify": ("核验删除回执", "Check an erasure receipt"),
    "verify_text": (
        "公开的审计日志和运营方公钥（指纹如下）可供任何人下载，用 facegate audit verify 核验回执：",
        "Anyone can download the published audit log and the operator's public key "
        "(fingerprint below) and check a receipt with facegate audit verify:",
    ),
    "version": ("告知版本", "Notice version"),
    "since": ("生效于", "in force since"),
    "old_version": (
        "这是历史版本，不是当前版本。",
        "This is an earlier version, not the one in force.",
    ),
    "current": ("查看当前版本", "See the version in force"),
    "phone": ("电话", "Phone"),
    "email": ("邮箱", "E-mail"),
    "address": ("地址", "Address"),
    "hours": ("办公时间", "Office hours"),
    "cameras": ("本小区的摄像头", "Cameras at this site"),
    "other_lang": ("English", "中文"),
    "received": ("申请已收到", "Request received"),
    "received_text": (
        "我们已收到您的门禁卡申请。申请编号：",
        "We have your key-card request. Request number:",
    ),
    "bad_request": ("申请未能提交", "The request could not be sent"),
}

KINDS: dict[str, tuple[str, str]] = {
    "face_match": ("人脸识别通行", "Face recognition passage"),
    "unknown_face": ("未识别的人脸", "Unrecognised face"),
    "key_card": ("门禁卡通行", "Key card passage"),
    "pin": ("密码通行", "PIN passage"),
    "manual_open": ("人工开门", "Opened by staff"),
}

_UNITS = (
    (365 * 86400, "年", "year"),
    (86400, "天", "day"),
    (3600, "小时", "hour"),
    (60, "分钟", "minute"),
    (1, "秒", "second"),
)


def t(key: str, lang: Lang) -> str:
    zh, en = L[key]
    return zh if lang == "zh" else en


def format_retention(value: dt.timedelta | None, lang: Lang) -> str:
    if value is None:
        return t("no_rule", lang)
    seconds = int(value.total_seconds())
    if seconds == 0:
        return t("not_stored", lang)
    for size, zh, en in _UNITS:
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {zh}" if lang == "zh" else f"{n} {en}{'' if n == 1 else 's'}"
    return f"{seconds} s"


def format_time(ms: int, tz_name: str = "UTC") -> str:
    """``ms`` in the site's time zone (UTC if the zone database lacks it)."""
    try:
        tz: dt.tzinfo = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        tz, tz_name = dt.UTC, "UTC"
    when = dt.datetime.fromtimestamp(ms / 1000, tz=tz)
    return when.strftime(f"%Y-%m-%d %H:%M ({tz_name})")


_CSS = """
body{font:16px/1.5 system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",sans-serif;
margin:0;color:#1b1b1b;background:#fafafa}
main{max-width:40rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .4rem;
border-bottom:1px solid #ddd}
.lang{float:right}.meta{color:#555;font-size:.9rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem;
border-bottom:1px solid #eee;vertical-align:top}
.key{background:#eef6ee;border:1px solid #9c9;padding:.8rem;border-radius:.4rem}
.old{background:#fff3cd;padding:.6rem}tr.purpose th{font-weight:normal;background:#f3f3f3}
input,button{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.2rem 0}
"""


def page(title: str, body: str, lang: Lang) -> str:
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _contact(c: Contact, lang: Lang) -> str:
    rows = []
    if c.phone:
        dial = "".join(ch for ch in c.phone if ch.isdigit() or ch == "+")
        rows.append(f'{t("phone", lang)}: <a href="tel:{escape(dial)}">{escape(c.phone)}</a>')
    if c.email:
        rows.append(f'{t("email", lang)}: <a href="mailto:{escape(c.email)}">{escape(c.email)}</a>')
    if c.address:
        rows.append(f"{t('address', lang)}: {escape(c.address.get(lang))}")
    if c.hours:
        rows.append(f"{t('hours', lang)}: {escape(c.hours.get(lang))}")
    return "<br>".join(rows)


def _party(p: Party, lang: Lang) -> str:
    return f"<p><strong>{escape(p.name.get(lang))}</strong><br>{_contact(p.contact, lang)}</p>"


def _basis(text: Text | None, lang: Lang) -> str:
    return f"<br>{t('legal_basis', lang)}: {escape(text.get(lang))}" if text else ""


def _retention_table(rows: tuple[RetentionRow, ...], site: SiteNotice, lang: Lang) -> str:
    out = [f"<table><tr><th>{t('kind', lang)}</th><th>{t('kept', lang)}</th></tr>"]
    purpose = None
    for r in rows:
        if r.purpose != purpose:
            purpose = r.purpose
            text = site.purpose(r.purpose).description.get(lang)
            out.append(
                f'<tr class="purpose"><th colspan="2">{t("purpose", lang)}: '
                f"<code>{escape(r.purpose)}</code> — {escape(text)}</th></tr>"
            )
        kind = KINDS.get(r.kind, (r.kind, r.kind))
        out.append(
            f'<tr data-kind="{escape(r.kind)}" data-purpose="{escape(r.purpose)}">'
            f"<td>{escape(kind[0] if lang == 'zh' else kind[1])}</td>"
            f'<td class="retention">{escape(format_retention(r.retention, lang))}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


def render_notice(
    content: NoticeContent,
    *,
    version: int,
    since_ms: int,
    lang: Lang,
    current_version: int | None = None,
    audit_key_id: str | None = None,
) -> str:
    """The page of one camera. ``current_version`` is set when rendering an older version;
    ``audit_key_id`` when the audit log is published under /audit/."""
    site, cam = content.site, content.camera
    path = notice_path(site.tenant, site.site, cam.id)
    other: Lang = "en" if lang == "zh" else "zh"
    other_href = f"{path}?lang={other}" + (
        f"&amp;version={version}" if current_version is not None else ""
    )
    purposes = "".join(
        f"<li><strong>{escape(p)}</strong>: {escape(site.purpose(p).description.get(lang))}"
        + _basis(site.purpose(p).legal_basis, lang)
        + "</li>"
        for p in cam.purposes
    )
    parts = [
        f'<a class="lang" href="{other_href}">{t("other_lang", lang)}</a>',
        f"<h1>{t('title', lang)}</h1>",
        f'<p class="meta">{escape(site.name.get(lang))} · {t("camera", lang)} '
        f"<code>{escape(cam.id)}</code><br>{t('location', lang)}: "
        f"{escape(cam.location.get(lang))}<br>{t('installed_on', lang)}: "
        f"{cam.installed_on.isoformat()}</p>",
    ]
    if current_version is not None:
        parts.append(
            f'<p class="old">{t("old_version", lang)} '
            f'<a href="{path}?lang={lang}">{t("current", lang)} (v{current_version})</a></p>'
        )
    parts += [
        f'<div class="key"><strong>{t("keycard", lang)}</strong><p>{t("keycard_note", lang)}</p>'
        f"<p>{escape(site.keycard.get(lang))}</p>"
        f'<a href="#keycard-form">{t("keycard_form", lang)}</a></div>',
        f"<h2>{t('operator', lang)}</h2>{_party(site.operator, lang)}",
        f"<h2>{t('installer', lang)}</h2>{_party(site.installer, lang)}",
        f"<h2>{t('privacy_contact', lang)}</h2><p>{_contact(site.privacy_contact, lang)}</p>",
        f"<h2>{t('purposes', lang)}</h2><ul>{purposes}</ul>",
        f"<h2>{t('legal_basis', lang)}</h2><p>{escape(site.legal_basis.get(lang))}</p>",
        f"<h2>{t('on_device', lang)}</h2><p>"
        f"{t('on_device_face' if cam.face_recognition else 'on_device_card', lang)}</p>",
        f"<h2>{t('leaves', lang)}</h2><p>{t('leaves_text', lang)}</p>",
        f"<h2>{t('storage', lang)}</h2><p>{escape(site.storage.get(lang))}</p>",
        f'<h2 id="retention">{t("retention", lang)}</h2>'
        f"{_retention_table(content.retention, site, lang)}",
        f"<h2>{t('withdraw', lang)}</h2><p>{escape(site.withdraw.get(lang))}</p>",
        f"<h2>{t('erasure', lang)}</h2><p>{escape(site.erasure.get(lang))}</p>"
        f"<p>{t('erasure_note', lang)}</p>",
        _verify_section(audit_key_id, lang),
        f'<h2 id="keycard-form">{t("keycard_form", lang)}</h2>'
        f'<form method="post" action="/notice/{escape(site.tenant)}/{escape(site.site)}/keycard">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<input type="hidden" name="camera" value="{escape(cam.id)}">'
        f'<label>{t("unit", lang)}<input name="unit" maxlength="40" required></label>'
        f'<label>{t("contact_field", lang)}<input name="contact" maxlength="120" required>'
        f'</label><button type="submit">{t("send", lang)}</button></form>',
        f'<p class="meta" id="version">{t("version", lang)} {version} · {t("since", lang)} '
        f"{format_time(since_ms, site.timezone)} · <code>{content.digest()[:16]}</code></p>",
    ]
    return page(f"{t('title', lang)} · {cam.id}", "".join(parts), lang)


def _verify_section(key_id: str | None, lang: Lang) -> str:
    if key_id is None:
        return ""
    return (
        f'<h2 id="verify">{t("verify", lang)}</h2><p>{t("verify_text", lang)}</p><ul>'
        '<li><a href="/audit/log.jsonl">log.jsonl</a></li>'
        '<li><a href="/audit/checkpoints.jsonl">checkpoints.jsonl</a></li>'
        '<li><a href="/audit/operator-public.pem">operator-public.pem</a></li></ul>'
        f"<p><code>{escape(key_id)}</code></p>"
        f'<p><a href="/receipt?lang={lang}">{t("verify", lang)} →</a></p>'
    )


def render_site_index(site: SiteNotice, lang: Lang) -> str:
    items = "".join(
        f'<li><a href="{notice_path(site.tenant, site.site, c.id)}?lang={lang}">'
        f"{escape(c.id)}</a> — {escape(c.location.get(lang))}</li>"
        for c in site.cameras
    )
    body = f"<h1>{escape(site.name.get(lang))}</h1><h2>{t('cameras', lang)}</h2><ul>{items}</ul>"
    return page(site.name.get(lang), body, lang)


def render_message(title_key: str, text: str, lang: Lang, back: str | None = None) -> str:
    link = f'<p><a href="{escape(back)}">←</a></p>' if back else ""
    return page(
        t(title_key, lang), f"<h1>{t(title_key, lang)}</h1><p>{escape(text)}</p>{link}", lang
    )
