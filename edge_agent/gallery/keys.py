"""The gallery key: 32 random bytes from a file or an environment variable, never logged.

A key file holds the key base64-encoded (one line) and is created mode 0600.
``FACEGATE_EDGE_GALLERY_KEY`` (base64) overrides the file.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from edge_agent.errors import GalleryKeyError

KEY_BYTES = 32
KEY_ENV = "FACEGATE_EDGE_GALLERY_KEY"


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise GalleryKeyError(f"gallery key in {where} is not base64") from None
    if len(key) != KEY_BYTES:
        raise GalleryKeyError(f"gallery key in {where} must be {KEY_BYTES} bytes")
    return key


def load_key(key_file: Path | None, env_var: str = KEY_ENV) -> bytes:
    """The key from ``env_var`` if set, else from ``key_file``; fails loudly if neither."""
    text = os.environ.get(env_var)
    if text:
        return _decode(text, f"${env_var}")
    if key_file is None:
        raise GalleryKeyError(f"no gallery key: set ${env_var} or gallery.key_file")
    if not key_file.is_file():
        raise GalleryKeyError(
            f"gallery key file {key_file} not found; create one: facegate edge gallery init-key"
        )
    return _decode(key_file.read_text(), str(key_file))


def create_key_file(path: Path) -> None:
    """Write a new random key (mode 0600); refuses to overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise GalleryKeyError(f"{path} exists; a new key would orphan the gallery") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
