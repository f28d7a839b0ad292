"""The notice of one camera as data: registry facts plus the retention in force (pure).

Its ``digest`` covers everything the page states, the live retention
included, so a policy change makes a new notice version at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from stream_processor.audit.canonical import digest
from stream_processor.notices.config import Camera, SiteNotice
from stream_processor.notices.retention import RetentionSource

#: Event kinds a notice states retention for, in reading order.
FACE_KINDS = ("face_match", "unknown_face")
OTHER_KINDS = ("key_card", "pin", "manual_open")


@dataclass(frozen=True, slots=True)
class RetentionRow:
    purpose: str
    kind: str
    #: ``None``: no rule in force (not stored); zero: counted only, not stored.
    retention: dt.timedelta | None


@dataclass(frozen=True)
class NoticeContent:
    site: SiteNotice
    camera: Camera
    retention: tuple[RetentionRow, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.site.tenant, self.site.site, self.camera.id)

    def doc(self) -> dict[str, Any]:
        site = self.site.model_dump(mode="json", exclude={"cameras"})
        return {
            "site": site,
            "camera": self.camera.model_dump(mode="json"),
            "retention": [
                {
                    "purpose": r.purpose,
                    "kind": r.kind,
                    "seconds": None if r.retention is None else int(r.retention.total_seconds()),
                }
                for r in self.retention
            ],
        }

    def digest(self) -> str:
        return digest(self.doc())


def build_content(site: SiteNotice, camera: Camera, source: RetentionSource) -> NoticeContent:
    kinds = (*FACE_KINDS, *OTHER_KINDS) if camera.face_recognition else OTHER_KINDS
    rows = tuple(
        RetentionRow(purpose, kind, source.retention_for(site.tenant, site.site, kind, purpose))
        for purpose in camera.purposes
        for kind in kinds
    )
    return NoticeContent(site, camera, rows)


def notice_path(tenant: str, site: str, camera: str) -> str:
    return f"/notice/{tenant}/{site}/{camera}"


def notice_url(base_url: str, tenant: str, site: str, camera: str) -> str:
    return base_url.rstrip("/") + notice_path(tenant, site, camera)


def content_from_doc(doc: dict[str, Any]) -> NoticeContent:
    """Rebuild an archived version's content (to show what a notice said back then)."""
    camera = Camera.model_validate(doc["camera"])
    site = SiteNotice.model_validate({**doc["site"], "cameras": [doc["camera"]]})
    rows = tuple(
        RetentionRow(
            r["purpose"],
            r["kind"],
            None if r["seconds"] is None else dt.timedelta(seconds=r["seconds"]),
        )
        for r in doc["retention"]
    )
    return NoticeContent(site, camera, rows)
