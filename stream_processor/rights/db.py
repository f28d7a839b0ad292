"""The small SQLite database of rights requests (default ``<state>/rights/rights.sqlite``).

Tables: key-card requests, issued erasure receipts, camera notice versions.
The erasure flow may move these onto the event store later; until then the
schema is created here, idempotently, by whoever opens it first.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stream_processor.runtime.layout import private_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keycard_requests (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    site TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    card_only INTEGER NOT NULL,
    unit TEXT,
    contact TEXT,
    subject TEXT,
    requested_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER,
    card_ref TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS keycard_open ON keycard_requests (status, tenant, site);
CREATE INDEX IF NOT EXISTS keycard_subject ON keycard_requests (subject);

CREATE TABLE IF NOT EXISTS erasure_receipts (
    request_id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    receipt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_subject ON erasure_receipts (subject);

CREATE TABLE IF NOT EXISTS notice_versions (
    tenant TEXT NOT NULL,
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant, site, camera, version)
);
"""


def rights_db_path(state_dir: Path) -> Path:
    return state_dir / "rights" / "rights.sqlite"


def open_rights_db(path: Path) -> sqlite3.Connection:
    """Open (and create) the database; autocommit, WAL, shared by several processes."""
    private_database(path)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=30000")
    # What an erasure clears here (a key-card request's subject, contact details scrubbed
    # after closing) is zeroed in the page, not left in free space.
    db.execute("PRAGMA secure_delete=ON")
    db.executescript(_SCHEMA)
    return db
