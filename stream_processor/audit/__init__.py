"""Tamper-evident audit log: hash-chained entries, signed checkpoints, offline verification.

    entries.py      the entry and its canonical JSON / SHA-256 chain
    commitment.py   salted subject commitments (no pseudonym in the clear)
    keys.py         the operator's Ed25519 key (private under <state>/secrets/)
    log.py          the append-only JSONL log (AuditSink port + file implementation)
    openings.py     private index of commitment openings, forgettable per subject
    checkpoint.py   signed checkpoints, file + Kafka publishing
    merkle.py       RFC 6962 hashing, inclusion and consistency proofs
    tree.py         the stored Merkle tree of the log (derived, per-level hash files)
    note.py         C2SP signed notes, verifier keys, cosignature/v1
    tlog.py         C2SP checkpoints of the tree, signed, kept with their cosignatures
    cosign.py       the log's side of tlog-witness (asking push witnesses)
    verify.py       verification from the published files and the public key only
    witnessed.py    the C2SP checkpoints against the log, and their cosignatures

Errors (verification failures are data, ``verify.Finding``, not exceptions)::

    FacegateError
    └── AuditError              the log, its key or its checkpoints cannot be used
        ├── IdentifierInAudit   an entry would carry a pseudonym in the clear: refused
        ├── KeyFileError        the operator key file is missing or not Ed25519
        ├── NoteError           a signed note, signature line or verifier key is malformed
        └── WitnessRefused      a witness answered add-checkpoint with an error status
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
