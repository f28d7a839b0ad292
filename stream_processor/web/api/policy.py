"""Policies of the token's tenant: show, history with diffs, dry run, apply; and the
retention status (the oldest stored event of each site and kind against its rule)."""

from __future__ import annotations

import asyncio
import difflib
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from stream_processor.policy.document import PolicyDocument
from stream_processor.policy.retention import CompiledPolicy, PolicyVersion
from stream_processor.processor.sweeper import cutoffs_for
from stream_processor.web.api.spec import Call, Strict, operation
from stream_processor.web.deps import WebDeps
from stream_processor.web.errors import ApiError
from stream_processor.web.tokens import Role


class PolicyIn(Strict):
    document: dict[str, Any] = Field(description="the policy document (as its YAML, in JSON)")
    comment: str = Field("", max_length=500, description="why this change (kept in the history)")


class PolicyOut(BaseModel):
    version: int
    applied_at_ms: int
    applied_by: str
    comment: str
    document: dict[str, Any]
    yaml: str


class VersionDiff(BaseModel):
    version: int
    applied_at_ms: int
    applied_by: str
    comment: str
    diff: str = Field(description="unified diff of the YAML against the previous version")


class History(BaseModel):
    versions: list[VersionDiff]


class Impact(BaseModel):
    site: str
    kind: str
    events: int


class DryRun(BaseModel):
    version: int = Field(description="the version this document would become")
    deletes: list[Impact] = Field(description="stored events the next sweep would delete")
    total: int


class Applied(DryRun):
    applied_by: str


class RetentionRow(BaseModel):
    site: str
    kind: str
    purpose: str
    rows: int
    oldest_age_s: float
    rule_s: float | None = Field(description="the rule in force; null: no rule applies")
    within_rule: bool


class RetentionStatus(BaseModel):
    policy_version: int | None
    groups: list[RetentionRow]


def as_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _doc(call: Call, document: dict[str, Any]) -> PolicyDocument:
    try:
        doc = PolicyDocument.model_validate(document)
    except ValidationError as exc:
        first = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise ApiError(422, "invalid_policy", first) from exc
    if doc.tenant != call.tenant:
        raise ApiError(404, "not_found", f"no tenant {doc.tenant}")
    return doc


async def history_of(deps: WebDeps, tenant: str) -> list[PolicyVersion]:
    try:
        return await asyncio.to_thread(deps.policies.history, tenant)
    except Exception as exc:  # noqa: BLE001 - a broker that is down is a 503, not a 500
        raise ApiError(503, "unavailable", f"policies cannot be read: {exc}") from exc


async def impact(deps: WebDeps, doc: PolicyDocument, version: int) -> DryRun:
    counts: dict[tuple[str, str, str], int] = {}
    if deps.store is not None:
        # What the next sweep would delete were it in force (processor/sweeper.py's cutoffs).
        now = int(deps.clock() * 1000)
        policy = CompiledPolicy(doc, version)
        groups = [g for g in deps.store.retention_groups() if g[0] == doc.tenant]
        counts = deps.store.count_expired(cutoffs_for(groups, lambda _t: policy, now), now)
    deletes = [Impact(site=s, kind=k, events=n) for (_, s, k), n in sorted(counts.items())]
    return DryRun(version=version, deletes=deletes, total=sum(counts.values()))


@operation(
    "GET",
    "/api/v1/policy",
    role=Role.VIEWER,
    tag="policy",
    response=PolicyOut,
    summary="The policy in force",
)
async def show_policy(call: Call) -> PolicyOut:
    versions = await history_of(call.deps, call.tenant)
    if not versions:
        raise ApiError(404, "not_found", "no policy applied yet")
    v = versions[-1]
    return PolicyOut(
        version=v.version,
        applied_at_ms=v.applied_at_ms,
        applied_by=v.applied_by,
        comment=v.comment,
        document=v.document,
        yaml=as_yaml(v.document),
    )


@operation(
    "GET",
    "/api/v1/policy/history",
    role=Role.VIEWER,
    tag="policy",
    response=History,
    summary="Every applied version, newest first, with a diff to the one before",
)
async def policy_history(call: Call) -> History:
    versions = await history_of(call.deps, call.tenant)
    out, before = [], ""
    for v in versions:
        text = as_yaml(v.document)
        diff = "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"v{v.version - 1}" if before else "(none)",
                f"v{v.version}",
            )
        )
        out.append(
            VersionDiff(
                version=v.version,
                applied_at_ms=v.applied_at_ms,
                applied_by=v.applied_by,
                comment=v.comment,
                diff=diff,
            )
        )
        before = text
    return History(versions=out[::-1])


@operation(
    "POST",
    "/api/v1/policy/dry-run",
    role=Role.OPERATOR,
    tag="policy",
    body=PolicyIn,
    response=DryRun,
    summary="What this document would delete now; changes nothing",
)
async def policy_dry_run(call: Call) -> DryRun:
    doc = _doc(call, call.body.document)
    versions = await history_of(call.deps, call.tenant)
    return await impact(call.deps, doc, 1 + (versions[-1].version if versions else 0))


@operation(
    "POST",
    "/api/v1/policy/apply",
    role=Role.OPERATOR,
    tag="policy",
    body=PolicyIn,
    response=Applied,
    status=201,
    summary="Put this document in force as a new version",
)
async def policy_apply(call: Call) -> Applied:
    return await apply_document(
        call.deps, call.principal.token.label, _doc(call, call.body.document), call.body.comment
    )


async def apply_document(deps: WebDeps, by: str, doc: PolicyDocument, comment: str) -> Applied:
    versions = await history_of(deps, doc.tenant)
    dry = await impact(deps, doc, 1 + (versions[-1].version if versions else 0))
    record = PolicyVersion(
        tenant=doc.tenant,
        version=dry.version,
        applied_at_ms=int(deps.clock() * 1000),
        applied_by=f"web:{by}",
        comment=comment,
        document=doc.model_dump(mode="json"),
    )
    try:
        await asyncio.to_thread(deps.policies.write, record)
    except Exception as exc:  # noqa: BLE001 - the broker's refusal, said plainly
        raise ApiError(503, "unavailable", f"policy not applied: {exc}") from exc
    return Applied(**dry.model_dump(), applied_by=record.applied_by)


@operation(
    "GET",
    "/api/v1/retention",
    role=Role.VIEWER,
    tag="policy",
    response=RetentionStatus,
    summary="The oldest stored event per site, kind and purpose against its rule",
)
async def retention(call: Call) -> RetentionStatus:
    return await retention_status(call.deps, call.tenant)


async def retention_status(deps: WebDeps, tenant: str) -> RetentionStatus:
    versions = await history_of(deps, tenant)
    policy = None
    if versions:
        v = versions[-1]
        policy = CompiledPolicy(PolicyDocument.model_validate(v.document), v.version)
    now = int(deps.clock() * 1000)
    rows = []
    groups = deps.store.group_ages() if deps.store is not None else []
    for g in groups:
        if g.tenant != tenant:
            continue
        rule_ms = policy.retention_ms(g.site, g.kind, g.purpose) if policy else None
        age_s = (now - g.oldest_occurred_ms) / 1000
        rows.append(
            RetentionRow(
                site=g.site,
                kind=g.kind,
                purpose=g.purpose,
                rows=g.rows,
                oldest_age_s=round(age_s, 1),
                rule_s=None if rule_ms is None else rule_ms / 1000,
                within_rule=rule_ms is None or age_s * 1000 <= rule_ms,
            )
        )
    return RetentionStatus(policy_version=policy.version if policy else None, groups=rows)
