"""Per-site pseudonyms: a keyed hash of the resident id under a secret that never leaves the site.

Two sites hold different secrets, so the same person gets unlinkable
pseudonyms; without the site secret a pseudonym cannot be reversed or
matched to a guessed id.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from edge_agent.errors import InvalidInput

PREFIX = "ps1_"
SECRET_BYTES = 32


def pseudonym(site_secret: bytes, resident_id: str) -> str:
    if len(site_secret) < 16:
        raise InvalidInput("site secret must be at least 16 bytes")
    digest = hmac.new(site_secret, resident_id.encode("utf-8"), hashlib.sha256).digest()
    return PREFIX + digest[:16].hex()


def load_or_create_site_secret(path: Path) -> bytes:
    """Read the site secret, creating a random one (mode 0600) on first use."""
    if path.exists():
        data = path.read_bytes()
        if len(data) < 16:
            raise InvalidInput(f"site secret {path} is too short")
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(SECRET_BYTES)

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data
