"""The operator's private index of commitment openings (entry → pseudonym, salt).

It lets the operator answer a subject access request without any pseudonym
in the log itself. It is NOT published. After an erasure the subject's
openings are forgotten (``forget``) once the receipt, which carries them,
has been issued: from then on only the receipt holder can link the log's
entries to the person.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS openings (
    seq INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    salt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS openings_subject ON openings (subject);
"""


@dataclass(frozen=True, slots=True)
class Opening:
    """What opens the commitment of entry ``seq``."""

    seq: int
    salt: str


class OpeningStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)  # private: never published with the log
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def put(self, seq: int, subject: str, salt: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO openings (seq, subject, salt) VALUES (?, ?, ?)",
            (seq, subject, salt),
        )

    def for_subject(self, subject: str) -> list[Opening]:
        rows = self._db.execute(
            "SELECT seq, salt FROM openings WHERE subject = ? ORDER BY seq", (subject,)
        ).fetchall()
        return [Opening(int(seq), str(salt)) for seq, salt in rows]

    def forget(self, subject: str) -> int:
        """Drop every opening of ``subject``; returns how many."""
        cur = self._db.execute("DELETE FROM openings WHERE subject = ?", (subject,))
        return cur.rowcount

    def close(self) -> None:
        self._db.close()
