"""C2SP ``tlog-checkpoint``s of the audit Merkle tree, signed, kept with their cosignatures.

A checkpoint is the signed note::

    <origin>            the log's name (``FACEGATE_AUDIT_LOG_ID``)
    <tree size>         number of entries covered, decimal
    <root hash>         RFC 6962 root of the first <size> lines, base64

signed by the operator's Ed25519 key under the key name ``<origin>``.
Witnesses add ``cosignature/v1`` lines; the store keeps every checkpoint and
every cosignature (``<state>/audit/checkpoints.sqlite``), served at
``/audit/checkpoint``.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stream_processor.audit.keys import OperatorKey, PublicKey
from stream_processor.audit.note import ED25519, Note, NoteError, Signature, Signer, Verifier
from stream_processor.audit.tree import StoredTree

_SIZE = re.compile(r"^(0|[1-9][0-9]{0,18})$")


@dataclass(frozen=True)
class TreeHead:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> TreeHead:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[0] or not _SIZE.fullmatch(lines[1]):
            raise NoteError("not a checkpoint: origin, tree size and root hash lines")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except ValueError as exc:  # binascii.Error, or text that is not ASCII
            raise NoteError(f"checkpoint root hash is not base64: {exc}") from exc
        if len(root) != 32:
            raise NoteError("checkpoint root hash is not 32 bytes")
        return cls(lines[0], int(lines[1]), root)


def operator_signer(key: OperatorKey, origin: str) -> Signer:
    """The operator's key as a note signer for checkpoints of ``origin``."""
    return Signer(origin, key.key, ED25519)


def operator_verifier(public: PublicKey, origin: str) -> Verifier:
    return Verifier(origin, ED25519, public.key)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tree_checkpoints (
    size INTEGER PRIMARY KEY, note TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cosignatures (
    size INTEGER NOT NULL, line TEXT NOT NULL, witness TEXT NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (size, line));
CREATE TABLE IF NOT EXISTS witness_heads (witness TEXT PRIMARY KEY, size INTEGER NOT NULL);
"""


class CheckpointStore:
    """Signed checkpoints and the cosignatures witnesses gave them (SQLite, any process)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._clock = clock

    def close(self) -> None:
        self._db.close()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def add(self, note: Note) -> None:
        head = TreeHead.parse(note.text)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO tree_checkpoints (size, note, at_ms) VALUES (?, ?, ?)",
                (head.size, note.encode().decode(), self._now_ms()),
            )

    def add_cosignatures(self, size: int, sigs: list[Signature]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO cosignatures (size, line, witness, at_ms) "
                "VALUES (?, ?, ?, ?)",
                [(size, s.line(), s.name, self._now_ms()) for s in sigs],
            )

    def _with_cosignatures(self, size: int, note_text: str) -> Note:
        note = Note.parse(note_text)
        rows = self._db.execute(
            "SELECT line FROM cosignatures WHERE size = ? ORDER BY at_ms, line", (size,)
        ).fetchall()
        return note.with_signatures(*(Signature.parse(r[0]) for r in rows))

    def get(self, size: int) -> Note | None:
        with self._lock:
            row = self._db.execute(
                "SELECT note FROM tree_checkpoints WHERE size = ?", (size,)
            ).fetchone()
            return self._with_cosignatures(size, row[0]) if row else None

    def latest(self) -> Note | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, note FROM tree_checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
            return self._with_cosignatures(row[0], row[1]) if row else None

    def latest_size(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT max(size) FROM tree_checkpoints").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def cosigned(self) -> Iterator[Note]:
        """Every checkpoint with at least one cosignature, oldest first."""
        with self._lock:
            sizes = [
                r[0]
                for r in self._db.execute(
                    "SELECT DISTINCT size FROM cosignatures ORDER BY size"
                ).fetchall()
            ]
        for size in sizes:
            note = self.get(size)
            if note is not None:
                yield note

    def cosigned_sizes(self, above: int = -1) -> list[int]:
        """Sizes above ``above`` that have a cosignature, largest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT size FROM cosignatures WHERE size > ? ORDER BY size DESC",
                (above,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def witness_head(self, witness: str) -> int:
        """The size a push witness last cosigned (0: never asked)."""
        with self._lock:
            row = self._db.execute(
                "SELECT size FROM witness_heads WHERE witness = ?", (witness,)
            ).fetchone()
        return int(row[0]) if row else 0

    def set_witness_head(self, witness: str, size: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO witness_heads (witness, size) VALUES (?, ?) "
                "ON CONFLICT (witness) DO UPDATE SET size = excluded.size",
                (witness, size),
            )


class TreeCheckpointer:
    """Brings the tree up to the log and signs a checkpoint when it grew."""

    def __init__(self, tree: StoredTree, store: CheckpointStore, signer: Signer) -> None:
        self.tree = tree
        self.store = store
        self._signer = signer

    @property
    def origin(self) -> str:
        return self._signer.name

    def checkpoint(self) -> Note | None:
        """The new signed checkpoint, or None when the tree has not grown."""
        size = self.tree.sync()
        if size == 0 or size == (self.store.latest_size() or 0):
            return None
        head = TreeHead(self._signer.name, size, self.tree.root(size))
        note = Note(head.text(), (self._signer.sign(head.text()),))
        self.store.add(note)
        return note
