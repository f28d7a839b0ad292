"""Notice versions: every distinct content of a camera's notice gets the next number.

The page states "version N, in force since T"; earlier versions stay
readable (``?version=N``), and each new version is written to the audit log,
so what a notice said on any day can be shown later.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stream_processor.audit import record
from stream_processor.audit.log import AuditSink
from stream_processor.notices.view import NoticeContent
from stream_processor.rights.db_port import RightsDb


@dataclass(frozen=True, slots=True)
class NoticeVersion:
    version: int
    digest: str
    since_ms: int


class NoticeArchive:
    def __init__(
        self,
        db: RightsDb,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock

    def latest(self, tenant: str, site: str, camera: str) -> NoticeVersion | None:
        row = self._db.execute(
            "SELECT version, digest, since_ms FROM notice_versions "
            "WHERE tenant = ? AND site = ? AND camera = ? ORDER BY version DESC LIMIT 1",
            (tenant, site, camera),
        ).fetchone()
        return NoticeVersion(int(row[0]), str(row[1]), int(row[2])) if row else None

    def current(self, content: NoticeContent) -> NoticeVersion:
        """The version of ``content``: the latest one, or a new one if it changed."""
        tenant, site, camera = content.key
        digest = content.digest()
        latest = self.latest(tenant, site, camera)
        if latest is not None and latest.digest == digest:
            return latest
        with self._db.transaction():
            latest = self.latest(tenant, site, camera)  # re-read under the write lock
            if latest is not None and latest.digest == digest:
                return latest
            new = NoticeVersion(
                (latest.version if latest else 0) + 1, digest, int(self._clock() * 1000)
            )
            self._db.execute(
                "INSERT INTO notice_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant,
                    site,
                    camera,
                    new.version,
                    digest,
                    new.since_ms,
                    json.dumps(content.doc()),
                ),
            )
        if self._audit is not None:
            record.notice_version(
                self._audit,
                tenant=tenant,
                site=site,
                camera=camera,
                version=new.version,
                content_digest=digest,
            )
        return new

    def history(self, tenant: str, site: str, camera: str) -> list[NoticeVersion]:
        rows = self._db.execute(
            "SELECT version, digest, since_ms FROM notice_versions "
            "WHERE tenant = ? AND site = ? AND camera = ? ORDER BY version",
            (tenant, site, camera),
        ).fetchall()
        return [NoticeVersion(int(v), str(d), int(s)) for v, d, s in rows]

    def document(self, tenant: str, site: str, camera: str, version: int) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT document FROM notice_versions "
            "WHERE tenant = ? AND site = ? AND camera = ? AND version = ?",
            (tenant, site, camera, version),
        ).fetchone()
        if row is None:
            return None
        doc = json.loads(row[0])
        assert isinstance(doc, dict)
        return doc
