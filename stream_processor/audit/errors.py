"""Errors of the audit package (verification failures are data: see verify.Finding)."""

from __future__ import annotations

from stream_processor.errors import BrokerError, FacegateError


class AuditError(FacegateError):
    """The audit log, its key or its checkpoints cannot be written or read."""


class IdentifierInAudit(AuditError):
    """An entry would carry a pseudonym or a resident id in the clear; refused."""


class KeyFileError(AuditError):
    """The operator key file is missing, unreadable or not an Ed25519 key."""


class NotCanonical(AuditError, TypeError):
    """A value has no canonical JSON form (a float, a non-string key, a non-JSON type)."""


class ChainUnavailable(AuditError, BrokerError):
    """In the multi-host mode, a fact's entry did not come back on the chain topic in
    time (no chaining writer, or Kafka unreachable): nothing was half-written."""


class ChainFork(AuditError):
    """The chain topic and this host's copy of the log disagree: refused, never merged."""
