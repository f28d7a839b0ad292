"""The witness's own key and state: its signing key (``witness-ed25519.pem``, 0600) and
``witness.sqlite`` — per log origin the head it last cosigned, the log keys it
trusts (configured, or learned from a logged rotation), and its fork statements.

Checking the old head and recording the new one happen in one transaction
(``BEGIN IMMEDIATE``): two rounds racing can never roll the head back.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_processor.audit.keys import create_key_file, load_key_file

KEY_FILE = "witness-ed25519.pem"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS heads (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL,
    note TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS learned_keys (
    origin TEXT NOT NULL, vkey TEXT NOT NULL, entry_index INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, PRIMARY KEY (origin, vkey));
CREATE TABLE IF NOT EXISTS fork_statements (
    id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, at_ms INTEGER NOT NULL,
    statement TEXT NOT NULL);
"""


def load_or_create_key(state_dir: Path) -> Ed25519PrivateKey:
    path = state_dir / KEY_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    if not path.exists() and (key := create_key_file(path)) is not None:
        return key
    return load_key_file(path, "the witness key")


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes
    note: str


class WitnessState:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._clock = clock

    def close(self) -> None:
        self._db.close()

    def head(self, origin: str) -> Head | None:
        row = self._db.execute(
            "SELECT size, root, note FROM heads WHERE origin = ?", (origin,)
        ).fetchone()
        return Head(int(row[0]), bytes(row[1]), str(row[2])) if row else None

    def advance(self, origin: str, expected: Head | None, new: Head) -> bool:
        """Record ``new`` if the head is still ``expected``; False if it moved meanwhile."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            current = self.head(origin)
            if current != expected:
                self._db.execute("ROLLBACK")
                return False
            self._db.execute(
                "INSERT INTO heads (origin, size, root, note, at_ms) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
                "root = excluded.root, note = excluded.note, at_ms = excluded.at_ms",
                (origin, new.size, new.root, new.note, int(self._clock() * 1000)),
            )
            self._db.execute("COMMIT")
            return True
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def learned_keys(self, origin: str) -> list[str]:
        rows = self._db.execute(
            "SELECT vkey FROM learned_keys WHERE origin = ? ORDER BY at_ms", (origin,)
        ).fetchall()
        return [str(r[0]) for r in rows]

    def learn_key(self, origin: str, vkey: str, entry_index: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO learned_keys (origin, vkey, entry_index, at_ms) "
            "VALUES (?, ?, ?, ?)",
            (origin, vkey, entry_index, int(self._clock() * 1000)),
        )

    def add_fork_statement(self, origin: str, statement: str) -> None:
        self._db.execute(
            "INSERT INTO fork_statements (origin, at_ms, statement) VALUES (?, ?, ?)",
            (origin, int(self._clock() * 1000), statement),
        )

    def fork_statements(self) -> list[str]:
        rows = self._db.execute("SELECT statement FROM fork_statements ORDER BY id").fetchall()
        return [str(r[0]) for r in rows]
