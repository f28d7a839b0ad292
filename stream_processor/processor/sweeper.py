"""The retention sweeper: delete what is past its rule, in batches, and report
the oldest stored age against its rule per site.

A row is past its rule when it is past the ``expires_at_ms`` stamped when it
was stored, or when it is older than the rule in force *now* (so shortening a
rule deletes what it newly expires on the next sweep; lengthening one never
extends what was stored under the shorter promise). The same cutoffs feed
``policy apply --dry-run``, so the dry run's counts are what the sweep deletes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stream_processor.policy.retention import CompiledPolicy
from stream_processor.store.base import EventStore, RetentionCutoff, SiteKindCounts

PolicyLookup = Callable[[str], CompiledPolicy | None]


def cutoffs_for(
    groups: list[tuple[str, str, str, str]], policy_of: PolicyLookup, now_ms: int
) -> list[RetentionCutoff]:
    """Cutoffs per stored (tenant, site, kind, purpose). A tenant without a policy
    in force keeps its stamped deadlines (cutoff 0): a worker that has not read
    the policies yet must never delete on a guess."""
    out: list[RetentionCutoff] = []
    by_tenant: dict[str, list[tuple[str, str, str]]] = {}
    for tenant, site, kind, purpose in groups:
        by_tenant.setdefault(tenant, []).append((site, kind, purpose))
    for tenant, rest in sorted(by_tenant.items()):
        policy = policy_of(tenant)
        if policy is None:
            out.extend(RetentionCutoff(tenant, s, k, p, 0) for s, k, p in rest)
            continue
        cuts = policy.cutoffs(rest, now_ms)
        out.extend(RetentionCutoff(tenant, s, k, p, c) for s, k, p, c in cuts)
    return out


@dataclass(frozen=True)
class GroupReport:
    tenant: str
    site: str
    kind: str
    purpose: str
    oldest_age_ms: int
    rule_ms: int | None  # None: no policy in force for the tenant

    @property
    def within_rule(self) -> bool:
        return self.rule_ms is None or self.oldest_age_ms <= self.rule_ms


@dataclass
class SweepReport:
    deleted: SiteKindCounts = field(default_factory=dict)
    overdue: SiteKindCounts = field(default_factory=dict)
    #: Counted-only event ids past their re-delivery horizon, forgotten.
    forgotten: int = 0
    groups: list[GroupReport] = field(default_factory=list)

    @property
    def deleted_total(self) -> int:
        return sum(self.deleted.values())


def dry_run(store: EventStore, policy: CompiledPolicy, now_ms: int) -> SiteKindCounts:
    """What the next sweep would delete if ``policy`` were in force for its tenant."""
    groups = [g for g in store.retention_groups() if g[0] == policy.tenant]
    return store.count_expired(cutoffs_for(groups, lambda _t: policy, now_ms), now_ms)


def sweep(
    store: EventStore, policy_of: PolicyLookup, now_ms: int, batch_size: int = 5000
) -> SweepReport:
    cutoffs = cutoffs_for(store.retention_groups(), policy_of, now_ms)
    report = SweepReport(deleted=store.delete_expired(cutoffs, now_ms, batch_size))
    report.overdue = store.count_expired(cutoffs, now_ms)
    report.forgotten = store.delete_counted(now_ms)
    # Not group_ages(): counting each group's rows would read the whole store every sweep.
    for g in store.group_oldest():
        policy = policy_of(g.tenant)
        rule = policy.retention_ms(g.site, g.kind, g.purpose) if policy else None
        if policy is not None and rule is None:
            rule = 0
        report.groups.append(
            GroupReport(g.tenant, g.site, g.kind, g.purpose, now_ms - g.oldest_occurred_ms, rule)
        )
    return report
