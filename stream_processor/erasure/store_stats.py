"""Keeps SQLite's planner statistics present on the event store, so that a subject's rows
are found through the subject index.

Without statistics SQLite guesses that ``tenant = ? AND site = ?`` (two columns of an
index) narrows more than ``subject = ?`` (one) and scans the whole site: with 1,000,000
stored events an erasure then took seconds instead of milliseconds. ``ANALYZE`` once
(when the store has no statistics yet) lets it see that a subject has a few hundred
rows where a site has a hundred thousand. PostgreSQL keeps its own statistics.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)


def ensure_sqlite_stats(path: Path) -> bool:
    """Run ``ANALYZE events`` if the store has no statistics for it, or if they are stale
    (the table has grown or shrunk more than twofold since); True if it ran."""
    if not path.exists():
        return False
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=30000")
        rows = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        known: int | None = None
        if db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()[
            0
        ]:
            stat = db.execute(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = 'events' AND idx = 'events_by_subject'"
            ).fetchone()
            known = int(str(stat[0]).split()[0]) if stat else None
        if known is not None and known > 0 and known / 2 <= rows <= known * 2:
            return False
        if rows < 1000:
            return False  # nothing to gain yet; the next start looks again
        started = time.monotonic()
        db.execute("ANALYZE events")
        log.info("event store statistics gathered in %.1fs", time.monotonic() - started)
        return True
    finally:
        db.close()
