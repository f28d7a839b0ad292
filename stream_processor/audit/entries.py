"""One audit entry, its canonical bytes and its place in the SHA-256 chain.

    hash = SHA-256(canonical(entry without "hash"))

and every entry names the hash of the one before it in ``prev`` (the first
names ``GENESIS``), so changing, dropping or reordering any entry breaks the
chain at a point the verifier can name. A line of the published JSONL log is
exactly ``canonical(entry)``: any changed byte is detected.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal

import msgspec

from stream_processor.audit.canonical import canonical, sha256_hex
from stream_processor.audit.commitment import COMMITMENT_PATTERN
from stream_processor.audit.errors import IdentifierInAudit
from stream_processor.errors import InvalidInput

GENESIS = "0" * 64
_HEX64 = r"^[0-9a-f]{64}$"
#: Anything shaped like a per-site pseudonym, anywhere in a string.
_PSEUDONYM_ANYWHERE = re.compile(r"ps1_[0-9a-f]{32}")


class EntryType(enum.StrEnum):
    ERASURE_REQUESTED = "erasure_requested"
    ERASURE_COMPLETED = "erasure_completed"
    ERASURE_WAIVED = "erasure_waived"
    CONSENT_CHANGED = "consent_changed"
    POLICY_VERSION = "policy_version"
    RETENTION_SWEEP = "retention_sweep"
    KEYCARD_REQUESTED = "keycard_requested"
    KEYCARD_FULFILLED = "keycard_fulfilled"
    KEYCARD_CANCELLED = "keycard_cancelled"
    NOTICE_VERSION = "notice_version"
    KEY_ROTATED = "key_rotated"
    SUBJECT_VIEWED = "subject_viewed"
    SUBJECT_EXPORTED = "subject_exported"


class AuditEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """An entry as written to and read from the log. Version 1."""

    v: Literal[1]
    seq: Annotated[int, msgspec.Meta(ge=0)]
    at_ms: int
    type: EntryType
    tenant: str | None
    site: str | None
    #: ``c1_…`` commitment to the subject's pseudonym, or null.
    subject: str | None
    #: Facts of the entry: counts, ids of requests and policies, digests. Never identifiers.
    body: dict[str, Any]
    prev: str
    hash: str

    def unsigned_doc(self) -> dict[str, Any]:
        doc = msgspec.to_builtins(self)
        assert isinstance(doc, dict)
        doc.pop("hash")
        return doc

    def doc(self) -> dict[str, Any]:
        doc = msgspec.to_builtins(self)
        assert isinstance(doc, dict)
        return doc

    def line(self, check: bool = True) -> bytes:
        """The entry's line in the JSONL log (without the newline)."""
        return canonical(self.doc(), check)

    def computed_hash(self, check: bool = True) -> str:
        return sha256_hex(canonical(self.unsigned_doc(), check))


_decoder = msgspec.json.Decoder(AuditEntry)


def decode_entry(line: bytes) -> AuditEntry:
    """Parse one log line; raises msgspec.DecodeError / ValidationError."""
    return _decoder.decode(line)


def check_no_identifiers(value: Any, path: str = "body") -> None:
    """Refuse any string shaped like a pseudonym anywhere in ``value``."""
    if isinstance(value, str):
        if _PSEUDONYM_ANYWHERE.search(value):
            raise IdentifierInAudit(f"{path}: a pseudonym in the clear has no place in the log")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_no_identifiers(key, f"{path} key")
            check_no_identifiers(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_no_identifiers(item, f"{path}[{i}]")


def build_entry(
    *,
    seq: int,
    at_ms: int,
    type: EntryType,
    tenant: str | None,
    site: str | None,
    subject: str | None,
    body: dict[str, Any],
    prev: str,
) -> AuditEntry:
    """A new entry with its hash; validates that nothing identifying is in it."""
    if subject is not None and not COMMITMENT_PATTERN.fullmatch(subject):
        raise IdentifierInAudit("subject must be a c1_ commitment, never a pseudonym or id")
    for name, value in (("tenant", tenant), ("site", site)):
        check_no_identifiers(value, name)
    check_no_identifiers(body)
    if not re.fullmatch(_HEX64, prev):
        raise InvalidInput("prev must be a SHA-256 hex digest")
    canonical(body)  # fail early on floats and other non-JSON values
    draft = AuditEntry(
        v=1,
        seq=seq,
        at_ms=at_ms,
        type=type,
        tenant=tenant,
        site=site,
        subject=subject,
        body=body,
        prev=prev,
        hash=GENESIS,
    )
    return msgspec.structs.replace(draft, hash=draft.computed_hash())
