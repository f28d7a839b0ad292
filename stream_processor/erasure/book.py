"""Erasure progress kept across restarts: one row per request in the rights database.

The row holds ``ErasureProgress`` (msgspec JSON) and a few columns to find it
by (command id, status). It names the subject until the erasure is complete and its
late audit entries are unlinked (``to_forget``, ``forget``); then it names no one.
Several processes (on several hosts, with PostgreSQL) share it; a read-modify-write
runs in the database's exclusive transaction, so two workers never lose an
acknowledgement to each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from stream_processor.erasure.progress import ErasureProgress, ErasureStatus, decode_progress
from stream_processor.rights.db_port import RightsDb


class ErasureBook:
    def __init__(self, db: RightsDb) -> None:
        self._db = db

    def add(self, progress: ErasureProgress, now_ms: int) -> bool:
        """Insert a new erasure; False if the request id is already known."""
        r = progress.request
        cur = self._db.execute(
            "INSERT INTO erasure_progress (request_id, command_id, tenant, site, status, "
            "requested_at_ms, updated_at_ms, progress) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                r.request_id, progress.command_id, r.tenant, r.site, progress.status.value,
                r.requested_at_ms, now_ms, progress.encode(),
            ),
        )  # fmt: skip
        return cur.rowcount == 1

    def get(self, request_id: str) -> ErasureProgress | None:
        row = self._db.execute(
            "SELECT progress FROM erasure_progress WHERE request_id = ?", (request_id,)
        ).fetchone()
        return decode_progress(row[0]) if row else None

    def find(self, request_id: str | None, command_id: str) -> str | None:
        """The request id an acknowledgement belongs to (by request id, else command id)."""
        if request_id is not None:
            row = self._db.execute(
                "SELECT request_id FROM erasure_progress WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row:
                return str(row[0])
        row = self._db.execute(
            "SELECT request_id FROM erasure_progress WHERE command_id = ?", (command_id,)
        ).fetchone()
        return str(row[0]) if row else None

    def update(
        self,
        request_id: str,
        change: Callable[[ErasureProgress], ErasureProgress],
        now_ms: int,
    ) -> tuple[ErasureProgress, ErasureProgress] | None:
        """Apply ``change`` atomically; returns (before, after), or None if unknown."""
        with self._db.transaction():
            before = self.get(request_id)
            if before is None:
                return None
            after = change(before)
            if after is not before:
                self._db.execute(
                    "UPDATE erasure_progress SET status = ?, updated_at_ms = ?, progress = ? "
                    "WHERE request_id = ?",
                    (after.status.value, now_ms, after.encode(), request_id),
                )
        return before, after

    def mark_sent(self, request_id: str, now_ms: int) -> None:
        self._db.execute(
            "UPDATE erasure_progress SET sent_at_ms = ? WHERE request_id = ?", (now_ms, request_id)
        )

    def mark_completed(self, request_id: str, completed_at_ms: int) -> None:
        self._db.execute(
            "UPDATE erasure_progress SET completed_at_ms = ? WHERE request_id = ?",
            (completed_at_ms, request_id),
        )

    def completed_at(self, request_id: str) -> int | None:
        row = self._db.execute(
            "SELECT completed_at_ms FROM erasure_progress WHERE request_id = ?", (request_id,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def pending(self, sent_before_ms: int | None = None) -> list[ErasureProgress]:
        """Erasures not yet complete (optionally: whose command was last sent before T)."""
        sql = "SELECT progress FROM erasure_progress WHERE status = ?"
        params: list[object] = [ErasureStatus.PENDING.value]
        if sent_before_ms is not None:
            sql += " AND sent_at_ms < ?"
            params.append(sent_before_ms)
        rows = self._db.execute(sql + " ORDER BY requested_at_ms", params).fetchall()
        return [decode_progress(r[0]) for r in rows]

    def unfinished(self) -> list[ErasureProgress]:
        """Complete by their parts but without a recorded completion (a crash in between)."""
        rows = self._db.execute(
            "SELECT progress FROM erasure_progress WHERE status = ? AND completed_at_ms IS NULL",
            (ErasureStatus.COMPLETE.value,),
        ).fetchall()
        return [decode_progress(r[0]) for r in rows]

    def completed_since(self, since_ms: int) -> list[ErasureProgress]:
        rows = self._db.execute(
            "SELECT progress FROM erasure_progress WHERE completed_at_ms >= ?", (since_ms,)
        ).fetchall()
        return [decode_progress(r[0]) for r in rows]

    def to_forget(self, now_ms: int, window_ms: int) -> list[ErasureProgress]:
        """Completed more than ``window_ms`` ago and still naming the subject. A row's
        last update comes before its completion (nothing changes a complete erasure)
        until ``forget`` stamps it, at least ``window_ms`` after: so the rows to forget
        need no column of their own, and clocks of several hosts may differ by less
        than the window."""
        rows = self._db.execute(
            "SELECT progress FROM erasure_progress WHERE status = ? AND completed_at_ms < ? "
            "AND updated_at_ms < completed_at_ms + ?",
            (ErasureStatus.COMPLETE.value, now_ms - window_ms, window_ms),
        ).fetchall()
        return [decode_progress(r[0]) for r in rows]

    def forget(self, request_id: str, now_ms: int) -> None:
        """Replace the subject in a completed erasure's record (``progress.FORGOTTEN``)."""
        with self._db.transaction():
            progress = self.get(request_id)
            if progress is not None and progress.status is ErasureStatus.COMPLETE:
                self._db.execute(
                    "UPDATE erasure_progress SET progress = ?, updated_at_ms = ? "
                    "WHERE request_id = ?",
                    (progress.forgotten().encode(), now_ms, request_id),
                )

    def recent(self, limit: int = 50) -> list[ErasureProgress]:
        rows = self._db.execute(
            "SELECT progress FROM erasure_progress ORDER BY requested_at_ms DESC LIMIT ?", (limit,)
        ).fetchall()
        return [decode_progress(r[0]) for r in rows]

    def pending_for_subject(
        self, tenant: str, site: str, subject: str, now_ms: int | None = None
    ) -> list[dict[str, object]]:
        """``PendingErasures`` of the subject access export (``rights/export.py``)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        rows = self._db.execute(
            "SELECT progress FROM erasure_progress WHERE status = ? AND tenant = ? AND site = ?",
            (ErasureStatus.PENDING.value, tenant, site),
        ).fetchall()
        out = []
        for (data,) in rows:
            p = decode_progress(data)
            if p.request.subject == subject:
                out.append(p.describe(now_ms))
        return out
