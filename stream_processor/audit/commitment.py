"""Salted subject commitments: how a subject appears in the audit log.

``c1_`` + SHA-256(domain ‖ salt ‖ pseudonym). The salt (32 random bytes,
one per entry) is never written to the log; it goes to the receipt holder
(and to the operator's private opening index until the subject is erased).
Without the salt a commitment reveals nothing and links nothing: two entries
about the same person carry unrelated commitments.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from stream_processor.errors import InvalidInput

PREFIX = "c1_"
SALT_BYTES = 32
_DOMAIN = b"facegate/audit/subject/v1\x00"
COMMITMENT_PATTERN = re.compile(r"^c1_[0-9a-f]{64}$")
SALT_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def new_salt() -> str:
    """A fresh random salt, hex."""
    return secrets.token_hex(SALT_BYTES)


def commit(pseudonym: str, salt_hex: str) -> str:
    if not SALT_PATTERN.fullmatch(salt_hex):
        raise InvalidInput("salt must be 32 bytes, hex")
    digest = hashlib.sha256(_DOMAIN + bytes.fromhex(salt_hex) + pseudonym.encode("utf-8"))
    return PREFIX + digest.hexdigest()


def opens(commitment: str, pseudonym: str, salt_hex: str) -> bool:
    """True if ``commitment`` is the commitment to ``pseudonym`` under ``salt_hex``."""
    try:
        expected = commit(pseudonym, salt_hex)
    except ValueError:
        return False
    return hmac.compare_digest(expected, commitment)
