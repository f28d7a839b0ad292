"""/receipt: a resident pastes an erasure receipt and reads, in Chinese or English, what
it states and whether it verifies against this site's published audit log.

A convenience, not a substitute: the page says how to check independently
(the published files and ``facegate audit verify`` or docs/verifier/). The
full log is verified in a worker thread; the form is rate-limited.
"""

from __future__ import annotations

import asyncio
from html import escape

from aiohttp import web

from stream_processor.audit.keys import Keyring
from stream_processor.audit.note import Verifier
from stream_processor.audit.settings import AuditPaths
from stream_processor.audit.verify import read_lines, verify_log
from stream_processor.audit.witnessed import published_notes, verify_witnessed
from stream_processor.notices.config import Lang
from stream_processor.notices.html import page
from stream_processor.rights.receipt_proof import check_witnessed
from stream_processor.rights.receipt_qr import parse_receipt
from stream_processor.rights.receipts import ErasureReceipt, check_signature, receipt_anchors
from stream_processor.web.audit import PUB
from stream_processor.web.deps import DEPS, WebDeps
from stream_processor.web.notices import _html, pick_lang

T: dict[str, tuple[str, str]] = {
    "title": ("核验删除回执", "Check an erasure receipt"),
    "intro": (
        "把您收到的回执（JSON 文本）粘贴到下面。本页用本小区公开的审计日志核验它。"
        "您也可以不依赖我们，下载 /audit/ 下的文件自行核验。",
        "Paste the receipt you received (its JSON text) below. This page checks it against "
        "the published audit log. You can also check it without us: download the files "
        "under /audit/ and verify them yourself.",
    ),
    "check": ("核验", "Check"),
    "ok": (
        "回执有效：签名正确，且与公开审计日志一致。",
        "The receipt is valid: signed, and in the published audit log.",
    ),
    "bad": ("回执未通过核验：", "The receipt does not verify:"),
    "unreadable": ("无法读取回执：", "The receipt cannot be read:"),
    "not_published": ("本站未公开审计日志。", "This site does not publish its audit log."),
    "request": ("申请编号", "Request"),
    "site": ("小区", "Site"),
    "subject": ("您的假名编号", "Your pseudonym"),
    "scope": ("范围", "Scope"),
    "everything": ("全部数据", "everything"),
    "requested": ("申请时间", "Requested"),
    "completed": ("完成时间", "Completed"),
    "deleted": ("已删除", "Deleted"),
    "devices": ("已确认删除的门禁设备", "Gate devices that confirmed"),
    "kafka": ("消息队列中最后副本的消失时间", "Last copy in the message log gone by"),
    "templates": ("人脸特征", "face templates"),
    "queued": ("待发送事件", "queued events"),
    "note": (
        "本回执的签名尚未被签名检查点覆盖，请稍后再核验。",
        "No signed checkpoint covers this receipt yet; check again later.",
    ),
    "witnessed": (
        "独立见证：{names} 已联署包含这次删除记录的审计日志检查点（{when}）。"
        "此后运营方无法在不被发现的情况下删除或改动这条记录。",
        "Independently witnessed: {names} cosigned a checkpoint of the audit log that "
        "contains this erasure ({when}). From then on the operator cannot remove or alter "
        "it without being found out.",
    ),
    "not_witnessed": (
        "这次删除尚未经独立见证方联署，请稍后再核验。",
        "No independent witness has cosigned this erasure yet; check again later.",
    ),
    "witness_bad": ("回执中的见证证明不成立：", "The receipt's witness proof does not hold:"),
}


def tr(key: str, lang: Lang) -> str:
    zh, en = T[key]
    return zh if lang == "zh" else en


def _when(ms: int, tz: str) -> str:
    from stream_processor.notices.html import format_time

    return format_time(ms, tz)


def _describe(receipt: ErasureReceipt, lang: Lang, tz: str) -> str:
    c = receipt.claims
    scope = ", ".join(c.scope.purposes) if c.scope.purposes is not None else tr("everything", lang)
    rows = [
        (tr("request", lang), escape(c.request_id)),
        (tr("site", lang), escape(f"{c.tenant}/{c.site}")),
        (tr("subject", lang), f"<code>{escape(c.subject)}</code>"),
        (tr("scope", lang), escape(scope)),
        (tr("requested", lang), _when(c.requested_at_ms, tz)),
        (tr("completed", lang), _when(c.completed_at_ms, tz)),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    deleted = "".join(
        f"<li>{d.count} × {escape(d.what)} <small>({escape(d.where)})</small></li>"
        for d in c.deletions
    )
    devices = "".join(
        f"<li>{escape(d.gate)}/{escape(d.device)}: {d.templates_removed} "
        f"{tr('templates', lang)}, {d.outbox_events_purged} {tr('queued', lang)} "
        f"<small>({_when(d.acked_at_ms, tz)})</small></li>"
        for d in c.devices
    )
    kafka = "".join(f"<li>{escape(k.topic)}: {_when(k.gone_by_ms, tz)}</li>" for k in c.kafka)
    return (
        f"<table>{table}</table><h2>{tr('deleted', lang)}</h2><ul>{deleted}</ul>"
        f"<h2>{tr('devices', lang)}</h2><ul>{devices}</ul>"
        + (f"<h2>{tr('kafka', lang)}</h2><ul>{kafka}</ul>" if kafka else "")
    )


def _form(lang: Lang, text: str = "") -> str:
    return (
        f'<form method="post" action="/receipt?lang={lang}">'
        f'<textarea name="receipt" rows="8" style="width:100%">{escape(text)}</textarea>'
        f'<button type="submit">{tr("check", lang)}</button></form>'
    )


async def receipt_form(request: web.Request) -> web.Response:
    lang = pick_lang(request)
    body = f"<h1>{tr('title', lang)}</h1><p>{tr('intro', lang)}</p>{_form(lang)}"
    return _html(page(tr("title", lang), body, lang), lang)


async def receipt_check(request: web.Request) -> web.Response:
    deps: WebDeps = request.app[DEPS]
    lang = pick_lang(request)
    title = f"<h1>{tr('title', lang)}</h1>"
    if not deps.receipt_limit.allow(request.remote or "unknown"):
        msg = "请稍后再试。" if lang == "zh" else "Too many checks; please try again later."
        return _html(page(tr("title", lang), title + f"<p>{msg}</p>", lang), lang, status=429)
    paths = deps.audit_paths
    if paths is None or not paths.log.exists():
        body = title + f"<p>{tr('not_published', lang)}</p>"
        return _html(page(tr("title", lang), body, lang), lang, status=404)
    form = await request.post()
    text = form.get("receipt")
    text = text if isinstance(text, str) else ""
    try:
        receipt = parse_receipt(text)
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        body = title + f"<p>{tr('unreadable', lang)} {escape(first)}</p>{_form(lang, text)}"
        return _html(page(tr("title", lang), body, lang), lang, status=400)

    ring = Keyring.load(paths.public_key)
    problems = check_signature(receipt, ring)

    mirror = request.app[PUB].mirror if PUB in request.app else None

    def full_check() -> list[str]:
        if mirror is not None:  # topic mode: every host's checkpoints, not this host's
            cps = mirror.read().splitlines(keepends=True)
        else:
            cps = list(read_lines(paths.checkpoints)) if paths.checkpoints.exists() else []
        report = verify_log(read_lines(paths.log), cps, ring, receipt_anchors(receipt))
        out = [str(f) for f in report.findings]
        if not out and any("not yet covered" in w for w in report.warnings):
            out_notes.append(tr("note", lang))
        return out

    out_notes: list[str] = []
    problems += await asyncio.to_thread(full_check)
    witnesses = request.app[PUB].witnesses if PUB in request.app else []
    found, bad = await asyncio.to_thread(_witnessed_by, receipt, ring, witnesses, paths)
    problems += [f"{tr('witness_bad', lang)} {p}" for p in bad]
    if problems:
        verdict = (
            f'<p class="old"><strong>{tr("bad", lang)}</strong></p><ul>'
            + "".join(f"<li>{escape(p)}</li>" for p in problems)
            + "</ul>"
        )
    else:
        verdict = f'<p class="key"><strong>{tr("ok", lang)}</strong></p>'
    verdict += "".join(f"<p>{escape(n)}</p>" for n in out_notes)
    site = deps.cameras.get().site(receipt.claims.tenant, receipt.claims.site)
    tz = site.timezone if site else "UTC"
    if found and not problems:
        names = ", ".join(escape(n) for n, _ in found)
        when = ", ".join(_when(t * 1000, tz) for _, t in found)
        verdict += f'<p class="key">{tr("witnessed", lang).format(names=names, when=when)}</p>'
    elif not problems:
        verdict += f"<p>{tr('not_witnessed', lang)}</p>"
    body = title + verdict + _describe(receipt, lang, tz)
    return _html(page(tr("title", lang), body, lang), lang, status=200 if not problems else 422)


def _witnessed_by(
    receipt: ErasureReceipt, ring: Keyring, witnesses: list[Verifier], paths: AuditPaths
) -> tuple[list[tuple[str, int]], list[str]]:
    """(who witnessed the erasure, problems with the receipt's own witness proof): from
    the proof the receipt carries, else from the log's published cosigned checkpoints."""
    if not witnesses:
        return [], []
    if receipt.witnessed is not None:
        check = check_witnessed(receipt, ring, witnesses)
        return (check.witnesses, []) if check.ok else ([], check.problems)
    report = verify_witnessed(
        read_lines(paths.log), published_notes(paths.tree_checkpoints), ring, witnesses
    )
    if report.witnessed is None or receipt.audit.seq >= report.witnessed.size:
        return [], []
    return list(report.witnessed.witnesses), []


def add_routes(app: web.Application) -> None:
    app.router.add_get("/receipt", receipt_form)
    app.router.add_post("/receipt", receipt_check)
