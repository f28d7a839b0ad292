"""The operator's private index of commitment openings (entry → pseudonym, salt).

It lets the operator answer a subject access request without any pseudonym
in the log itself. It is NOT published. After an erasure the subject's
openings are forgotten (``forget``) once the receipt, which carries them,
has been issued: from then on only the receipt holder can link the log's
entries to the person.

Two stores behind one port (``Openings``): a private SQLite file on one host
(``OpeningStore``), and the rights database shared by every host (``SharedOpenings``,
``FACEGATE_RIGHTS_DSN``). With several hosts on one chain, an entry appended on one
host is opened by a subject export or a receipt issued on another, so the openings
must not stay on the host that appended it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stream_processor.rights.db_port import RightsDb

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


class Openings(Protocol):
    """The operator's private index of openings: what a subject export and a receipt read."""

    def put(self, seq: int, subject: str, salt: str) -> None: ...

    def for_subject(self, subject: str) -> list[Opening]: ...

    def forget(self, subject: str) -> int:
        """Drop every opening of ``subject``; returns how many."""
        ...

    def close(self) -> None: ...


class OpeningStore:
    """One host's openings: a private SQLite file beside the audit log."""

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


class SharedOpenings:
    """Every host's openings, in the rights database (table ``audit_openings``).

    Entry numbers are the one chain's, so they are unique across hosts. An erasure's
    ``forget`` deletes the rows for every host at once."""

    def __init__(self, db: RightsDb, *, owns_db: bool = True) -> None:
        self._db = db
        self._owns_db = owns_db

    def put(self, seq: int, subject: str, salt: str) -> None:
        self._db.execute(
            "INSERT INTO audit_openings (seq, subject, salt) VALUES (?, ?, ?) "
            "ON CONFLICT (seq) DO UPDATE SET subject = excluded.subject, salt = excluded.salt",
            (seq, subject, salt),
        )

    def for_subject(self, subject: str) -> list[Opening]:
        rows = self._db.execute(
            "SELECT seq, salt FROM audit_openings WHERE subject = ? ORDER BY seq", (subject,)
        ).fetchall()
        return [Opening(int(seq), str(salt)) for seq, salt in rows]

    def forget(self, subject: str) -> int:
        cur = self._db.execute("DELETE FROM audit_openings WHERE subject = ?", (subject,))
        return cur.rowcount

    def close(self) -> None:
        if self._owns_db:
            self._db.close()
