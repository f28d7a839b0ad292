"""Tamper-evident audit log: hash-chained entries, signed checkpoints, offline verification.

    entries.py      the entry and its canonical JSON / SHA-256 chain
    commitment.py   salted subject commitments (no pseudonym in the clear)
    keys.py         the operator's Ed25519 key (private under <state>/secrets/)
    log.py          the append-only JSONL log (AuditSink port + file implementation)
    openings.py     private index of commitment openings, forgettable per subject
    checkpoint.py   signed checkpoints, file + Kafka publishing
    verify.py       verification from the published files and the public key only

Errors (verification failures are data, ``verify.Finding``, not exceptions)::

    FacegateError
    └── AuditError              the log, its key or its checkpoints cannot be used
        ├── IdentifierInAudit   an entry would carry a pseudonym in the clear: refused
        └── KeyFileError        the operator key file is missing or not Ed25519
"""

from stream_processor.audit.commitment import commit, new_salt, opens
from stream_processor.audit.entries import AuditEntry, EntryType
from stream_processor.audit.errors import AuditError, IdentifierInAudit
from stream_processor.audit.log import AuditSink, FileAuditLog, SubjectRef

__all__ = [
    "AuditEntry",
    "AuditError",
    "AuditSink",
    "EntryType",
    "FileAuditLog",
    "IdentifierInAudit",
    "SubjectRef",
    "commit",
    "new_salt",
    "opens",
]
