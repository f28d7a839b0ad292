"""Which ids a withdrawal goes by in the book, and which a finished row keeps.

A withdrawal's command id is keyed (``processor.ledger.withdrawal_id``): without the
deployment's key, a pseudonym and a time do not lead to it. Earlier versions derived
it from the pseudonym and time alone (``legacy_withdrawal_id``), so such an id links
its row to the subject. Those ids are kept while their command is pending (a gate
acknowledges the id it was sent) and sealed once the row is done or forgotten: the
sealed id is keyed, so it no longer links, and the same withdrawal read again from
the ledger still finds its row by it.

Pure functions; the book (``withdrawals``) applies them.
"""

from __future__ import annotations

import uuid

from edge_agent.wire.commands import EdgeCommand
from stream_processor.policy.consent import ConsentRecord
from stream_processor.processor.ledger import keyed_uuid7, legacy_withdrawal_id


def uuid7_ms(command_id: str) -> int:
    """The time a UUIDv7 carries (0 for a string that is not a UUID)."""
    try:
        return uuid.UUID(command_id).int >> 80
    except ValueError:
        return 0


def sealed(command_id: str, key: bytes) -> str:
    """The keyed id a finished row keeps in place of an unkeyed one."""
    return keyed_uuid7(uuid7_ms(command_id), key, b"withdrawal-done/" + command_id.encode())


def aliases(record: ConsentRecord, key: bytes) -> tuple[str, str]:
    """The ids an earlier version's row for ``record`` may have: pending, or sealed."""
    legacy = legacy_withdrawal_id(record.key, record.at_ms)
    return legacy, sealed(legacy, key)


def is_legacy(command: EdgeCommand, consent_key: str | None) -> bool:
    """Whether a row's command carries the unkeyed id its consent record gives."""
    if consent_key is None:
        return False
    legacy = legacy_withdrawal_id(consent_key.encode(), command.issued_at_ms)
    return command.command_id == legacy


def finished_id(command: EdgeCommand, consent_key: str | None, key: bytes) -> str:
    """The id a row keeps once done or forgotten: its own, or sealed if unkeyed."""
    if is_legacy(command, consent_key):
        return sealed(command.command_id, key)
    return command.command_id


__all__ = ["aliases", "finished_id", "is_legacy", "sealed", "uuid7_ms"]
