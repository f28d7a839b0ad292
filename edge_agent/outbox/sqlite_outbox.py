"""The durable outbox of a gate device (SQLite, WAL).

An event is appended in the same transaction that assigns its per-device
sequence number, so a crash can neither lose an event nor leave a gap. The
broker's PUBACK only marks an event sent (``mark_sent``): a broker that crashes
before saving loses what it acknowledged. An event leaves when the cloud
confirms it durable in Kafka (``confirm``, by sequence range), when the broker
refused it (``remove``), or when a purge removes it on purpose (consent
withdrawn, erasure, too old) — never silently.

Rows carry a ``topic_kind``: ``events`` (gate events, with a per-device
sequence number) or ``acks`` (command acknowledgements, which have none and
are never purged by subject: an ack must reach the cloud even for a subject
whose events were just purged). An ack is confirmed by its command id.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.errors import OutboxError, OutboxFull, WireError
from edge_agent.wire import GateEvent, decode_event, encode_event
from edge_agent.wire.commands import CommandAck, decode_ack
from edge_agent.wire.commands import encode as encode_command
from edge_agent.wire.ids import new_event_id

EVENTS = "events"
ACKS = "acks"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT NOT NULL UNIQUE,
    subject        TEXT,
    occurred_at_ms INTEGER NOT NULL,
    payload        BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_subject ON outbox (subject) WHERE subject IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 0);
"""


def _field(decode: Callable[[bytes], Any], payload: bytes, name: str) -> Any:
    """A queued row's field for the migration; None (never confirmed, so sent again
    each timeout and dead-lettered by the cloud, never silently lost) when the row
    does not decode."""
    try:
        return getattr(decode(bytes(payload)), name)
    except WireError:
        return None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: str
    payload: bytes
    kind: str = EVENTS


class SqliteOutbox:
    """Thread-safe (one connection behind a lock): the agent appends, the publisher drains."""

    def __init__(self, path: Path, max_rows: int = 1_000_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Queued events name pseudonyms: owner-only, like the site secret.
            # SQLite gives its -wal and -shm files the database file's mode.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.path = path
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged append survives power loss, not only a process kill.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "topic_kind" not in columns:
            # Outboxes written before acks existed hold only events.
            self._db.execute(
                f"ALTER TABLE outbox ADD COLUMN topic_kind TEXT NOT NULL DEFAULT '{EVENTS}'"
            )
        if "seq" not in columns:
            self._db.execute("ALTER TABLE outbox ADD COLUMN seq INTEGER")
            self._db.execute("ALTER TABLE outbox ADD COLUMN sent_at_ms INTEGER")
            # Rows queued before confirmations existed: their seq is in the payload.
            rows = self._db.execute(
                "SELECT id, payload FROM outbox WHERE topic_kind = ?", (EVENTS,)
            ).fetchall()
            self._db.executemany(
                "UPDATE outbox SET seq = ? WHERE id = ?",
                [(_field(decode_event, payload, "seq"), row_id) for row_id, payload in rows],
            )
        if "command_id" not in columns:
            self._db.execute("ALTER TABLE outbox ADD COLUMN command_id TEXT")
            rows = self._db.execute(
                "SELECT id, payload FROM outbox WHERE topic_kind = ?", (ACKS,)
            ).fetchall()
            self._db.executemany(
                "UPDATE outbox SET command_id = ? WHERE id = ?",
                [(_field(decode_ack, payload, "command_id"), row_id) for row_id, payload in rows],
            )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS outbox_by_seq ON outbox (seq) WHERE seq IS NOT NULL"
        )

    def append(self, make: Callable[[int], GateEvent]) -> GateEvent:
        """Assign the next sequence number, build the event with it, store it."""
        return self.append_many([make])[0]

    def append_many(self, makers: Sequence[Callable[[int], GateEvent]]) -> list[GateEvent]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                depth = self._depth_for_ceiling(len(makers))
                if depth + len(makers) > self.max_rows:
                    self._db.execute("ROLLBACK")
                    raise OutboxFull(f"outbox holds {depth} events; ceiling is {self.max_rows}")
                seq = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
                events = [make(seq + i) for i, make in enumerate(makers)]
                self._db.executemany(
                    "INSERT INTO outbox (event_id, subject, occurred_at_ms, payload, seq)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (e.event_id, e.subject, e.occurred_at_ms, encode_event(e), e.seq)
                        for e in events
                    ],
                )
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key='next_seq'", (seq + len(makers),)
                )
                self._db.execute("COMMIT")
                return events
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox append failed: {exc}") from exc

    def _depth_for_ceiling(self, adding: int) -> int:
        """The depth, cheaply: max(id) − min(id) + 1 is an O(log n) upper bound from the
        primary key; the exact count(*) (a full scan) runs only near the ceiling."""
        low, high = self._db.execute(
            "SELECT (SELECT min(id) FROM outbox), (SELECT max(id) FROM outbox)"
        ).fetchone()
        if low is None:
            return 0
        bound = int(high) - int(low) + 1
        if bound + adding <= self.max_rows:
            return bound
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def append_ack(self, ack: CommandAck) -> None:
        """Queue a command acknowledgement, durably, behind the events already queued.

        Not subject to the ceiling: acks are few (one per command) and the cloud
        must learn that a withdrawal or erasure was carried out.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO outbox (event_id, subject, occurred_at_ms, payload, topic_kind,"
                    " command_id) VALUES (?, NULL, ?, ?, ?, ?)",
                    ("ack:" + new_event_id(ack.acked_at_ms), ack.acked_at_ms,
                     encode_command(ack), ACKS, ack.command_id),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox append failed: {exc}") from exc

    def peek(self, after_id: int, limit: int) -> list[OutboxRow]:
        """The oldest rows after ``after_id``, in append order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, event_id, payload, topic_kind FROM outbox WHERE id > ?"
                " ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def remove(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        with self._lock:
            cur = self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
            return cur.rowcount

    def mark_sent(self, ids: Sequence[int], now_ms: int) -> None:
        """The broker acknowledged these rows: sent, kept until the cloud confirms them."""
        if not ids:
            return
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET sent_at_ms = ? WHERE id = ?", [(now_ms, i) for i in ids]
            )

    def confirm(self, from_seq: int, through_seq: int) -> int:
        """The cloud holds this device's events ``from_seq..through_seq`` durably:
        remove them; returns how many rows left."""
        with self._lock:
            return self._db.execute(
                "DELETE FROM outbox WHERE seq BETWEEN ? AND ? AND topic_kind = ?",
                (from_seq, through_seq, EVENTS),
            ).rowcount

    def confirm_ack(self, command_id: str) -> int:
        """The cloud holds this device's acknowledgement(s) of the command: remove them."""
        with self._lock:
            return self._db.execute(
                "DELETE FROM outbox WHERE command_id = ? AND topic_kind = ?", (command_id, ACKS)
            ).rowcount

    def oldest_sent(self) -> tuple[int, int] | None:
        """``(row id, sent_at_ms)`` of the first row sent and not yet confirmed."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, sent_at_ms FROM outbox WHERE sent_at_ms IS NOT NULL"
                " ORDER BY id LIMIT 1"
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def unconfirmed(self) -> int:
        """Rows the broker acknowledged that the cloud has not confirmed yet."""
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT count(*) FROM outbox WHERE sent_at_ms IS NOT NULL"
                ).fetchone()[0]
            )

    def purge_subject(self, subject: str) -> int:
        """Remove every queued event of a subject (consent withdrawn, erasure)."""
        with self._lock:
            return self._db.execute("DELETE FROM outbox WHERE subject = ?", (subject,)).rowcount

    def purge_older_than(self, cutoff_ms: int) -> int:
        """Remove queued events older than the edge's maximum age (acks are kept)."""
        with self._lock:
            return self._db.execute(
                "DELETE FROM outbox WHERE occurred_at_ms < ? AND topic_kind = ?",
                (cutoff_ms, EVENTS),
            ).rowcount

    def oldest_ms(self) -> int | None:
        """``occurred_at_ms`` of the oldest queued row (publish lag), None when empty."""
        with self._lock:
            row = self._db.execute("SELECT occurred_at_ms FROM outbox ORDER BY id LIMIT 1")
            first = row.fetchone()
        return int(first[0]) if first else None

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def next_seq(self) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
