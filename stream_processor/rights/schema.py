"""The rights database's tables, as numbered migrations applied once per database.

One DDL text serves both dialects: ``{int}`` is a 64-bit integer (PostgreSQL's
``INTEGER`` is 32-bit, too small for millisecond timestamps) and ``{blob}`` raw bytes.
Version 1 is every table that existed before versioning, written ``IF NOT EXISTS`` so
a database created by an older release adopts it unchanged. A new table or column is
a new entry at the end; an applied entry is never edited.
"""

from __future__ import annotations

import time

from stream_processor.rights.db_port import Dialect, RightsDb

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"int": "INTEGER", "blob": "BLOB"},
    "postgres": {"int": "BIGINT", "blob": "BYTEA"},
}

_V1 = """
CREATE TABLE IF NOT EXISTS keycard_requests (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, site TEXT NOT NULL, status TEXT NOT NULL,
    channel TEXT NOT NULL, card_only {int} NOT NULL, unit TEXT, contact TEXT, subject TEXT,
    requested_at_ms {int} NOT NULL, closed_at_ms {int}, card_ref TEXT, note TEXT
);
CREATE INDEX IF NOT EXISTS keycard_open ON keycard_requests (status, tenant, site);
CREATE INDEX IF NOT EXISTS keycard_subject ON keycard_requests (subject);
CREATE TABLE IF NOT EXISTS erasure_receipts (
    request_id TEXT PRIMARY KEY, subject TEXT NOT NULL, issued_at_ms {int} NOT NULL,
    receipt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_subject ON erasure_receipts (subject);
CREATE TABLE IF NOT EXISTS notice_versions (
    tenant TEXT NOT NULL, site TEXT NOT NULL, camera TEXT NOT NULL, version {int} NOT NULL,
    digest TEXT NOT NULL, since_ms {int} NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (tenant, site, camera, version)
);
CREATE TABLE IF NOT EXISTS erasure_progress (
    request_id TEXT PRIMARY KEY, command_id TEXT NOT NULL, tenant TEXT NOT NULL,
    site TEXT NOT NULL, status TEXT NOT NULL, requested_at_ms {int} NOT NULL,
    updated_at_ms {int} NOT NULL, sent_at_ms {int} NOT NULL DEFAULT 0,
    completed_at_ms {int}, progress {blob} NOT NULL
);
CREATE INDEX IF NOT EXISTS erasure_progress_status ON erasure_progress (status, tenant, site);
CREATE INDEX IF NOT EXISTS erasure_progress_command ON erasure_progress (command_id);
CREATE TABLE IF NOT EXISTS device_waivers (
    tenant TEXT NOT NULL, site TEXT NOT NULL, gate TEXT NOT NULL, device TEXT NOT NULL,
    reason TEXT NOT NULL, by_officer TEXT NOT NULL, at_ms {int} NOT NULL,
    audit_seq {int} NOT NULL, PRIMARY KEY (tenant, site, gate, device)
);
CREATE TABLE IF NOT EXISTS web_tokens (
    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, role TEXT NOT NULL,
    label TEXT NOT NULL, created_at_ms {int} NOT NULL, expires_at_ms {int},
    revoked_at_ms {int}
);
CREATE TABLE IF NOT EXISTS web_sessions (
    hash TEXT PRIMARY KEY, token_id TEXT NOT NULL REFERENCES web_tokens (id),
    csrf TEXT NOT NULL, expires_at_ms {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS compliance_milestones (
    tenant TEXT NOT NULL, what TEXT NOT NULL, reached_at_ms {int} NOT NULL,
    PRIMARY KEY (tenant, what)
)
"""

# The device registry: every gate device ever registered, kept after removal (a removed
# gate may still hold templates; only a waiver releases it from an erasure).
_V2 = """
CREATE TABLE device_registry (
    tenant TEXT NOT NULL, site TEXT NOT NULL, gate TEXT NOT NULL, device TEXT NOT NULL,
    registered_at_ms {int} NOT NULL, registered_by TEXT NOT NULL,
    removed_at_ms {int}, removed_by TEXT,
    PRIMARY KEY (tenant, site, gate, device)
);
CREATE INDEX device_registry_site ON device_registry (tenant, site)
"""

# The audit log's private openings (audit/openings.py, ``SharedOpenings``): on the
# shared database, so that a host opens the entries another host appended.
_V3 = """
CREATE TABLE audit_openings (
    seq {int} PRIMARY KEY, subject TEXT NOT NULL, salt TEXT NOT NULL
);
CREATE INDEX audit_openings_subject ON audit_openings (subject)
"""

# An erasure's completion as first attempted (rights/receipt_store.py, ``pin``): every
# retry, on any host, logs the same claims under the same salt, so they chain once.
_V4 = """
CREATE TABLE erasure_completions (
    request_id TEXT PRIMARY KEY, claims TEXT NOT NULL, salt TEXT NOT NULL
)
"""

# Where Prometheus scrapes a gate agent (runtime/device_targets.py): on the shared
# registry, so that every host's Prometheus scrapes the gates any host registered.
_V5 = """
ALTER TABLE device_registry ADD COLUMN metrics_address TEXT
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)


def statements(version: int, dialect: Dialect) -> list[str]:
    """The DDL statements of migration ``version`` (1-based) in ``dialect``."""
    text = MIGRATIONS[version - 1].format(**_TYPES[dialect])
    return [s.strip() for s in text.split(";") if s.strip()]


_HAS_VERSIONS: dict[Dialect, str] = {
    "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'rights_schema'",
    "postgres": "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'rights_schema' "
    "AND schemaname = current_schema()",
}


def version_of(db: RightsDb) -> int:
    """The newest migration applied to ``db`` (0: none)."""
    if not db.execute(_HAS_VERSIONS[db.dialect]).fetchone()[0]:
        return 0
    row = db.execute("SELECT MAX(version) FROM rights_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: RightsDb) -> int:
    """Bring ``db`` to the newest version; returns it. Safe to run from several
    processes and hosts at once: the transaction is exclusive. A database already up
    to date is only read, so the processes' role needs no CREATE right once the
    schema's owner has migrated it (docs/operations.md, "The rights database")."""
    if version_of(db) == len(MIGRATIONS):
        return len(MIGRATIONS)
    int_type = _TYPES[db.dialect]["int"]
    with db.transaction():
        db.execute(
            f"CREATE TABLE IF NOT EXISTS rights_schema (version {int_type} PRIMARY KEY, "
            f"applied_at_ms {int_type} NOT NULL)"
        )
        current = version_of(db)
        for version in range(current + 1, len(MIGRATIONS) + 1):
            for sql in statements(version, db.dialect):
                db.execute(sql)
            db.execute(
                "INSERT INTO rights_schema (version, applied_at_ms) VALUES (?, ?)",
                (version, int(time.time() * 1000)),
            )
    return len(MIGRATIONS)


__all__ = ["MIGRATIONS", "migrate", "statements", "version_of"]
