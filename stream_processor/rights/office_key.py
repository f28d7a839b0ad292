"""Identifiers the office keeps only as keyed digests: consent-form and other evidence
references, under the office's identifier key.

An unsalted hash of a consent-form number can be brute-forced (form numbers are
short and sequential); an HMAC under a key that never leaves the office cannot.
The ledger and the audit log then hold ``ev1_`` + 128 bits; the office, holding
the paper form, recomputes the digest to find the record.

    ev1_ = HMAC-SHA256(office key, len-prefixed "facegate/evidence/v1" | tenant | site | ref)

The key is ``<state dir>/secrets/office-identifiers.key`` (32 random bytes, mode
0600), made on first use by the office CLI. Back it up with the audit key: a
lost key leaves old digests unmatched, never readable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import struct
from pathlib import Path

from stream_processor.errors import ConfigError

KEY_FILE = "office-identifiers.key"
KEY_BYTES = 32
PREFIX = "ev1_"
DOMAIN = "facegate/evidence/v1"
DIGEST_PATTERN = re.compile(r"^ev1_[0-9a-f]{32}$")


def _framed(*parts: str) -> bytes:
    return b"".join(struct.pack(">I", len(p.encode())) + p.encode() for p in parts)


def evidence_digest(key: bytes, tenant: str, site: str, ref: str) -> str:
    """The keyed digest of an evidence reference (a consent form's number)."""
    if len(key) < 16:
        raise ConfigError("the office identifier key must be at least 16 bytes")
    mac = hmac.new(key, _framed(DOMAIN, tenant, site, ref), hashlib.sha256)
    return PREFIX + mac.hexdigest()[:32]


def office_key(state_dir: Path) -> bytes:
    """The office's identifier key, made (0600) on first use."""
    path = state_dir / "secrets" / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written aside and linked into place: two commands starting at once agree on one
        # key, and neither reads a half-written file.
        tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{path} is not an office identifier key ({KEY_BYTES} bytes)")
    return key
