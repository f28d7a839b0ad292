"""Retention tuning (operator): edit the policy, read the dry run's impact, apply, see history.

The dry run and apply go through the same functions as the API
(``web/api/policy.py``), so the page's count is what the next sweep deletes.
"""

from __future__ import annotations

import yaml
from aiohttp import web
from pydantic import ValidationError

from stream_processor.notices.config import Lang
from stream_processor.policy.document import PolicyDocument, parse_policy_yaml
from stream_processor.web.api.policy import DryRun, apply_document, as_yaml, history_of, impact
from stream_processor.web.auth import PRINCIPAL, Principal, require
from stream_processor.web.deps import DEPS
from stream_processor.web.errors import ApiError
from stream_processor.web.pages.layout import e, pick_lang, shell, tr
from stream_processor.web.tokens import Role

MAX_YAML = 32 * 1024


def _editor(principal: Principal, lang: Lang, text: str, action: str, label: str) -> str:
    csrf = principal.session.csrf if principal.session else ""
    return (
        f'<form method="post" action="/console/retention/{action}?lang={lang}" id="{action}-form">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<textarea name="policy" id="policy" rows="22">{e(text)}</textarea>'
        f'<label for="comment">{tr("comment", lang)}</label>'
        '<input name="comment" id="comment" maxlength="500" style="width:100%">'
        f'<button type="submit" id="{action}">{label}</button></form>'
    )


def _impact_table(dry: DryRun, lang: Lang) -> str:
    rows = "".join(
        f"<tr><td>{e(i.site)}</td><td>{e(i.kind)}</td><td>{i.events}</td></tr>" for i in dry.deletes
    )
    return (
        f"<h2>{tr('would_delete', lang)} (v{dry.version})</h2><table><thead><tr>"
        f"<th>{tr('site', lang)}</th><th>{tr('kind', lang)}</th><th>{tr('events', lang)}</th>"
        f"</tr></thead><tbody>{rows}</tbody><tfoot><tr><th colspan=2>{tr('total', lang)}</th>"
        f'<th id="dry-run-total">{dry.total}</th></tr></tfoot></table>'
    )


async def retention_page(request: web.Request) -> web.Response:
    lang, principal, deps = pick_lang(request), request[PRINCIPAL], request.app[DEPS]
    versions = await history_of(deps, principal.tenant)
    parts = [f"<h1>{tr('retention', lang)}</h1>"]
    if not versions:
        parts.append(f"<p>{tr('no_policy', lang)}</p>")
    else:
        parts.append(
            f'<p>{tr("in_force", lang)} <strong id="version">{versions[-1].version}</strong></p>'
        )
    current = as_yaml(versions[-1].document) if versions else f"tenant: {principal.tenant}\n"
    if principal.role.allows(Role.OPERATOR):
        parts.append(_editor(principal, lang, current, "dry-run", tr("dry_run", lang)))
    else:
        parts.append(f"<pre>{e(current)}</pre>")
    parts.append(await _status_table(request, lang))
    parts.append(f"<h2>{tr('history', lang)}</h2>")
    before = ""
    import difflib

    blocks = []
    for v in versions:
        text = as_yaml(v.document)
        diff = "".join(
            difflib.unified_diff(
                before.splitlines(True), text.splitlines(True), f"v{v.version - 1}", f"v{v.version}"
            )
        )
        blocks.append(
            f'<h3>v{v.version} · {e(v.applied_by)} · {e(v.comment)}</h3><pre class="diff">'
            f"{e(diff)}</pre>"
        )
        before = text
    parts.extend(reversed(blocks))
    return shell(request, tr("retention", lang), "".join(parts), lang)


async def _status_table(request: web.Request, lang: Lang) -> str:
    """The oldest stored event per site, kind and purpose against the rule in force."""
    from stream_processor.web.api.policy import retention_status

    status = await retention_status(request.app[DEPS], request[PRINCIPAL].tenant)
    rows = "".join(
        f'<tr class="{"" if g.within_rule else "alarm"}"><td>{e(g.site)}</td><td>{e(g.kind)}</td>'
        f"<td>{g.rows}</td><td>{g.oldest_age_s / 86400:.1f} d</td>"
        f"<td>{'–' if g.rule_s is None else f'{g.rule_s / 86400:g} d'}</td></tr>"
        for g in status.groups
    )
    return (
        f"<h2>{tr('status', lang)}</h2><table><thead><tr><th>{tr('site', lang)}</th>"
        f"<th>{tr('kind', lang)}</th><th>{tr('events', lang)}</th><th>{tr('oldest', lang)}</th>"
        f"<th>{tr('rule', lang)}</th></tr></thead><tbody>{rows}</tbody></table>"
    )


async def _posted(request: web.Request) -> tuple[PolicyDocument, str, str]:
    if (request.content_length or 0) > MAX_YAML:
        raise ApiError(413, "too_large", "policy text too long")
    form = await request.post()
    text, comment = form.get("policy"), form.get("comment", "")
    if not isinstance(text, str) or not isinstance(comment, str):
        raise ApiError(400, "bad_request", "policy text required")
    try:
        doc = parse_policy_yaml(text)
    except (ValidationError, ValueError, yaml.YAMLError) as exc:
        raise ApiError(422, "invalid_policy", str(exc).splitlines()[0][:300]) from exc
    except RecursionError as exc:  # PyYAML composes nested nodes recursively
        raise ApiError(422, "invalid_policy", "policy text nested too deeply") from exc
    if doc.tenant != request[PRINCIPAL].tenant:
        raise ApiError(404, "not_found", f"no tenant {doc.tenant}")
    return doc, text, comment[:500]


async def dry_run_page(request: web.Request) -> web.Response:
    principal = require(request, Role.OPERATOR)
    lang, deps = pick_lang(request), request.app[DEPS]
    doc, text, _ = await _posted(request)
    versions = await history_of(deps, principal.tenant)
    dry = await impact(deps, doc, 1 + (versions[-1].version if versions else 0))
    body = (
        f"<h1>{tr('retention', lang)} · {tr('dry_run', lang)}</h1>"
        + _impact_table(dry, lang)
        + _editor(principal, lang, text, "apply", tr("apply", lang))
    )
    return shell(request, tr("dry_run", lang), body, lang)


async def apply_page(request: web.Request) -> web.StreamResponse:
    principal = require(request, Role.OPERATOR)
    doc, _, comment = await _posted(request)
    applied = await apply_document(request.app[DEPS], principal.token.label, doc, comment)
    raise web.HTTPSeeOther(
        f"/console/retention?lang={pick_lang(request)}&applied={applied.version}"
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/retention", retention_page)
    app.router.add_post("/console/retention/dry-run", dry_run_page)
    app.router.add_post("/console/retention/apply", apply_page)
