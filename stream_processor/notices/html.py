"""The notice page: one camera, phone-first, in Chinese or English (pure string rendering).

Everything is escaped; no script, no external resource, nothing tracked.
"""

from __future__ import annotations

from html import escape

from stream_processor.notices.config import Contact, Lang, Party, SiteNotice, Text
from stream_processor.notices.view import NoticeContent, RetentionRow, notice_path
from stream_processor.notices.wording import KINDS, format_retention, format_time, t

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


# t and format_time: re-exported for the web pages that import them here.
__all__ = [
    "format_time",
    "page",
    "render_message",
    "render_notice",
    "render_site_index",
    "t",
]
