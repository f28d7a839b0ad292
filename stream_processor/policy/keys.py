"""Keys of the compacted ledger topics (consent and policies) and their tables.

- ``tenant``: the policy in force; ``tenant@00000007``: one version, kept apart
  by compaction for ``policy history`` (ids never contain ``@``);
- consent keys: ``policy.consent.consent_key``;
- internal keys start with ``_`` (ids never do): heartbeats, written so that a
  quiet compacted topic still rolls its active segment (compaction never
  touches the active one), and the tables' read positions.
"""

from __future__ import annotations

INTERNAL_PREFIX = b"_"
HEARTBEAT_PREFIX = INTERNAL_PREFIX + b"heartbeat/"
HISTORY_MARK = b"@"


def heartbeat_key(writer: str) -> bytes:
    return HEARTBEAT_PREFIX + writer.encode()


def is_heartbeat(key: bytes) -> bool:
    return key.startswith(HEARTBEAT_PREFIX)


def is_internal(key: bytes) -> bool:
    """A heartbeat or a read position: no tenant's record."""
    return key.startswith(INTERNAL_PREFIX)


def policy_key(tenant: str) -> bytes:
    """Key of a tenant's policy in force (compaction keeps the latest)."""
    return tenant.encode()


def history_key(tenant: str, version: int) -> bytes:
    """Key of one version, kept for ``policy history`` (distinct keys survive compaction)."""
    return policy_key(tenant) + HISTORY_MARK + f"{version:08d}".encode()


def is_history(key: bytes) -> bool:
    return HISTORY_MARK in key


def tenant_of(key: bytes) -> str:
    """The tenant a policies-topic key names, whether in force or history."""
    return key.partition(HISTORY_MARK)[0].decode(errors="replace")
