"""Canonical JSON: the exact bytes that are hashed and signed.

Sorted keys, no insignificant whitespace, UTF-8, and no floats (their text
form is not stable across implementations), so any verifier in any language
reproduces the same bytes from the same document.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stream_processor.audit.errors import NotCanonical


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return
    if isinstance(value, float):
        raise NotCanonical(f"{path}: floats are not allowed in canonical JSON")
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{path}: object keys must be strings")
            _check(item, f"{path}.{key}")
        return
    raise NotCanonical(f"{path}: {type(value).__name__} is not a JSON value")


def canonical(doc: Any, check: bool = True) -> bytes:
    """The canonical bytes of ``doc``. ``check=False`` skips the float/type walk:
    for re-encoding documents that were just decoded from JSON (verification),
    where a float cannot make a forged entry pass, only fail its hash."""
    if check:
        _check(doc, "$")
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(doc: Any) -> str:
    """SHA-256 (hex) of the canonical form of ``doc``."""
    return sha256_hex(canonical(doc))
