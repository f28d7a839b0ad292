"""The one-line progress of the demo: stored events per site and kind, refusals by reason."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Snapshot:
    stored: int
    by_site_kind: tuple[tuple[str, str, int], ...]
    refused_by_reason: tuple[tuple[str, int], ...]

    def line(self, elapsed_s: float) -> str:
        kinds = ", ".join(f"{site}/{kind}={n}" for site, kind, n in self.by_site_kind)
        refused = ", ".join(f"{reason}={n}" for reason, n in self.refused_by_reason) or "none"
        return f"t={elapsed_s:5.0f}s stored={self.stored} [{kinds}] refused: {refused}"


EMPTY = Snapshot(0, (), ())


def snapshot(db_path: Path) -> Snapshot:
    """What the store holds now (read-only; the worker keeps writing)."""
    if not db_path.exists():
        return EMPTY
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute(
            "SELECT site, kind, count(*) FROM events GROUP BY site, kind ORDER BY site, kind"
        ).fetchall()
        refused = db.execute(
            "SELECT outcome, sum(n) FROM aggregates_minute WHERE outcome != 'stored' "
            "GROUP BY outcome ORDER BY outcome"
        ).fetchall()
    except sqlite3.OperationalError:
        return EMPTY  # the worker has not created its tables yet
    finally:
        db.close()
    return Snapshot(
        stored=sum(int(n) for _, _, n in rows),
        by_site_kind=tuple((str(s), str(k), int(n)) for s, k, n in rows),
        refused_by_reason=tuple((str(r), int(n)) for r, n in refused),
    )


def subject_events(db_path: Path, site: str, kind: str, subject: str) -> int:
    """Stored events of one kind for one pseudonym at a site (the story's checks)."""
    if not db_path.exists():
        return 0
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute(
            "SELECT count(*) FROM events WHERE site = ? AND kind = ? AND subject = ?",
            (site, kind, subject),
        ).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def refused_at(db_path: Path, site: str, kind: str) -> int:
    """Events of a kind at a site that were counted but not stored (e.g. unknown faces)."""
    if not db_path.exists():
        return 0
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute(
            "SELECT coalesce(sum(n), 0) FROM aggregates_minute "
            "WHERE site = ? AND kind = ? AND outcome != 'stored'",
            (site, kind),
        ).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()
