"""What a consumer's failure means: its own store or broker is out (wait and retry), the
record is poison (quarantine it), or not known to be either."""

from __future__ import annotations

import enum

import msgspec


class Failure(enum.Enum):
    OUTAGE = "outage"
    POISON = "poison"
    UNKNOWN = "unknown"


#: DB-API 2 (sqlite3, psycopg) and Kafka client class names, matched along the MRO so
#: that no driver has to be imported here.
_OUTAGE_NAMES = frozenset(
    {"OperationalError", "InterfaceError", "InternalError", "KafkaError", "KafkaException"}
)
_POISON_NAMES = frozenset(
    {
        "DataError", "IntegrityError", "ProgrammingError", "NotSupportedError",
        "WireError", "IdentifierInAudit", "NotCanonical",
    }
)  # fmt: skip
_POISON_TYPES = (
    ValueError,  # UnicodeError, msgspec.ValidationError, json.JSONDecodeError
    TypeError,
    ArithmeticError,  # OverflowError
    LookupError,
    msgspec.DecodeError,
)


def classify(exc: BaseException) -> Failure:
    """Outage: the consumer's own store or broker failed (retry, the record is fine).
    Poison: the record itself cannot be handled. Errors that say ``retriable`` are outages;
    an ``OSError`` (disk full, connection refused, timeout) is one."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _POISON_NAMES:
        return Failure.POISON
    if getattr(exc, "retriable", False) or names & _OUTAGE_NAMES or isinstance(exc, OSError):
        return Failure.OUTAGE
    if names & {"StoreError", "AuditError"}:
        return Failure.OUTAGE  # the consumer's own files or database
    if isinstance(exc, _POISON_TYPES):
        return Failure.POISON
    return Failure.UNKNOWN


__all__ = ["Failure", "classify"]
