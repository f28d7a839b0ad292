"""Compliance figures and consent coverage of the token's tenant (counts only)."""

from __future__ import annotations

from pydantic import BaseModel

from stream_processor.errors import FacegateError
from stream_processor.web.api.spec import Call, operation
from stream_processor.web.compliance import (
    Compliance,
    ComplianceConfig,
    Milestones,
    build_compliance,
    load_compliance,
)
from stream_processor.web.consent_counts import SiteConsent
from stream_processor.web.deps import WebDeps
from stream_processor.web.errors import ApiError
from stream_processor.web.tokens import Role


class ConsentCoverage(BaseModel):
    sites: list[SiteConsent]


def compliance_of(deps: WebDeps, tenant: str) -> Compliance:
    try:
        config = (
            load_compliance(deps.compliance_path)
            if deps.compliance_path
            else ComplianceConfig(version=1)
        )
        sites = [s for s in deps.cameras.get().sites if s.tenant == tenant]
    except FacegateError as exc:
        raise ApiError(503, "unavailable", f"compliance inputs unreadable: {exc}") from exc
    if deps.milestones is None:
        raise ApiError(503, "unavailable", "no milestone store configured")
    milestones: Milestones = deps.milestones
    return build_compliance(
        tenant,
        int(deps.clock() * 1000),
        sites,
        deps.devices.of_tenant(tenant),
        config,
        deps.consent.of_tenant(tenant),
        lambda t, s, c: deps.archive.latest(t, s, c) is not None,
        milestones,
    )


@operation(
    "GET", "/api/v1/compliance", role=Role.VIEWER, tag="compliance", response=Compliance,
    summary="Filing threshold, impact assessments, notice coverage, consent (counts only)",
)  # fmt: skip
async def compliance(call: Call) -> Compliance:
    return compliance_of(call.deps, call.tenant)


@operation(
    "GET", "/api/v1/consent", role=Role.VIEWER, tag="compliance", response=ConsentCoverage,
    summary="Consent coverage per site: residents consenting, withdrawn, minors (counts only)",
)  # fmt: skip
async def consent(call: Call) -> ConsentCoverage:
    return ConsentCoverage(sites=call.deps.consent.of_tenant(call.tenant))
