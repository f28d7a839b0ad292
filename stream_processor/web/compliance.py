"""The compliance panel: the rules a firm must meet (docs ../shared/notes/law.md) against
live figures — counts only, never a pseudonym.

- persons whose face templates the firm stores, from device status, against the
  100,000-person filing threshold, with the date it was first reached (kept in the
  rights database: a figure that later drops does not undo a filing duty);
- a personal-information impact assessment (PIA) per site, from
  ``<state>/config/compliance.yaml``, and a warning where face processing runs
  without one;
- notice coverage: every registry camera has a published notice, every reporting
  device maps to a registry camera;
- consent: residents consenting, withdrawn, minors with a guardian's consent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream_processor.errors import ConfigError
from stream_processor.notices.config import SiteNotice
from stream_processor.rights.db_port import RightsDb
from stream_processor.web.consent_counts import SiteConsent
from stream_processor.web.devices import DeviceRow

#: Persons with stored face information at which a processor must file (30 working days).
FILING_THRESHOLD = 100_000


class PiaRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reference: str = Field(min_length=1, max_length=120, description="the assessment's reference")
    date: dt.date = Field(description="when it was completed")


class ComplianceConfig(BaseModel):
    """``compliance.yaml``: ``version: 1`` and ``pia: {tenant: {site: {reference, date}}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = Field(description="format version of this file")
    pia: dict[str, dict[str, PiaRecord]] = Field(
        default_factory=dict, description="impact assessments per tenant and site"
    )


def load_compliance(path: Path) -> ComplianceConfig:
    """The file, or an empty config when there is none (every site then lacks a PIA)."""
    if not path.exists():
        return ComplianceConfig(version=1)
    try:
        return ComplianceConfig.model_validate(yaml.safe_load(path.read_text()))
    except (ValidationError, yaml.YAMLError, OSError) as exc:
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]}") from exc


class Milestones:
    """When a figure first reached a threshold, per tenant (rights database)."""

    def __init__(self, db: RightsDb) -> None:
        self._db = db

    def reached(self, tenant: str, what: str, now_ms: int) -> int:
        self._db.execute(
            "INSERT INTO compliance_milestones VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (tenant, what, now_ms),
        )
        row = self._db.execute(
            "SELECT reached_at_ms FROM compliance_milestones WHERE tenant = ? AND what = ?",
            (tenant, what),
        ).fetchone()
        return int(row[0])

    def get(self, tenant: str, what: str) -> int | None:
        row = self._db.execute(
            "SELECT reached_at_ms FROM compliance_milestones WHERE tenant = ? AND what = ?",
            (tenant, what),
        ).fetchone()
        return None if row is None else int(row[0])


class SiteCompliance(BaseModel):
    site: str
    face_processing: bool = Field(description="a face camera or a device holding templates")
    persons_with_templates: int
    pia: PiaRecord | None
    pia_missing: bool = Field(description="face processing runs here without a recorded PIA")


class NoticeCoverage(BaseModel):
    cameras: int
    cameras_with_notice: int
    cameras_without_notice: list[str] = Field(description="site/camera ids")
    devices: int
    devices_mapped: int
    devices_unmapped: list[str] = Field(description="site/gate/device ids with no camera")


class Compliance(BaseModel):
    persons_with_templates: int = Field(description="persons whose face templates are stored")
    templates_stored: int
    filing_threshold: int
    threshold_reached_at_ms: int | None
    sites: list[SiteCompliance]
    notices: NoticeCoverage
    consent: list[SiteConsent]


def persons_per_site(devices: Iterable[DeviceRow]) -> dict[str, int]:
    """Each device of a site holds that site's consenting residents: the site's count is
    its largest device's (residents if the device says, else its templates: an upper bound)."""
    out: dict[str, int] = {}
    for row in devices:
        s = row.status
        n = s.gallery_residents if s.gallery_residents is not None else s.gallery_templates
        out[s.site] = max(out.get(s.site, 0), n)
    return out


def build_compliance(
    tenant: str,
    now_ms: int,
    registry_sites: list[SiteNotice],
    devices: list[DeviceRow],
    config: ComplianceConfig,
    consent: list[SiteConsent],
    has_notice: Callable[[str, str, str], bool],
    milestones: Milestones,
) -> Compliance:
    persons = persons_per_site(devices)
    total = sum(persons.values())
    reached = (
        milestones.reached(tenant, "filing_threshold", now_ms)
        if total >= FILING_THRESHOLD
        else milestones.get(tenant, "filing_threshold")
    )
    pias = config.pia.get(tenant, {})
    face_sites = {s.site for s in registry_sites if any(c.face_recognition for c in s.cameras)}
    face_sites |= {site for site, n in persons.items() if n > 0}
    sites = sorted(face_sites | {s.site for s in registry_sites} | set(persons))
    rows = [
        SiteCompliance(
            site=site,
            face_processing=site in face_sites,
            persons_with_templates=persons.get(site, 0),
            pia=pias.get(site),
            pia_missing=site in face_sites and site not in pias,
        )
        for site in sites
    ]
    cams = [(s.site, c.id) for s in registry_sites for c in s.cameras]
    without = [f"{site}/{cam}" for site, cam in cams if not has_notice(tenant, site, cam)]
    unmapped = []
    for row in devices:
        st = row.status
        site = next((s for s in registry_sites if s.site == st.site), None)
        cameras = site.cameras if site else []
        if not any(c.gate == st.gate and c.device in (None, st.device) for c in cameras):
            unmapped.append(f"{st.site}/{st.gate}/{st.device}")
    return Compliance(
        persons_with_templates=total,
        templates_stored=sum(r.status.gallery_templates for r in devices),
        filing_threshold=FILING_THRESHOLD,
        threshold_reached_at_ms=reached,
        sites=rows,
        notices=NoticeCoverage(
            cameras=len(cams),
            cameras_with_notice=len(cams) - len(without),
            cameras_without_notice=without,
            devices=len(devices),
            devices_mapped=len(devices) - len(unmapped),
            devices_unmapped=unmapped,
        ),
        consent=consent,
    )
