"""How the witness reads the operator's log: the ``LogClient`` port and its HTTP implementation."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any, Protocol

from stream_processor.errors import FacegateError


class LogUnavailable(FacegateError):
    """The log's web app did not answer, or answered something unusable (not a fork)."""


class LogClient(Protocol):
    def checkpoint(self) -> bytes: ...

    def consistency(self, old: int, new: int) -> list[bytes]: ...

    def inclusion(self, index: int, size: int) -> list[bytes]: ...

    def rotations(self) -> list[tuple[int, str]]:
        """(index, entry line) of each key_rotated entry."""
        ...

    def post_cosignature(self, note: bytes) -> None: ...


def _hashes(doc: Any) -> list[bytes]:
    if not isinstance(doc, dict) or not isinstance(doc.get("proof"), list):
        raise LogUnavailable("the proof answer has no proof list")
    try:
        return [base64.b64decode(str(p), validate=True) for p in doc["proof"]]
    except ValueError as exc:  # binascii.Error, or text that is not ASCII
        raise LogUnavailable(f"a proof hash is not base64: {exc}") from exc


class HttpLogClient:
    """The operator's web app at ``base_url`` (its /audit/ routes). Answers over
    ``max_bytes`` (default 1 MiB: a checkpoint is ~200 bytes, a proof ~2 kB) are
    refused, so a hostile log cannot flood the witness."""

    def __init__(self, base_url: str, timeout_s: float = 10.0, max_bytes: int = 1 << 20) -> None:
        self.base = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    def _request(self, path: str, body: bytes | None = None) -> bytes:
        req = urllib.request.Request(  # noqa: S310 - the operator's configured URL
            self.base + path,
            data=body,
            method="POST" if body is not None else "GET",
            headers={"Content-Type": "text/plain; charset=utf-8"} if body is not None else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                data: bytes = resp.read(self.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace").strip()[:200]
            raise LogUnavailable(f"{self.base}{path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise LogUnavailable(f"{self.base}{path}: {exc}") from None
        if len(data) > self.max_bytes:
            raise LogUnavailable(f"{self.base}{path}: answer over {self.max_bytes} bytes")
        return data

    def _json(self, path: str) -> Any:
        try:
            return json.loads(self._request(path))
        except ValueError as exc:
            raise LogUnavailable(f"{self.base}{path}: not JSON: {exc}") from None

    def checkpoint(self) -> bytes:
        return self._request("/audit/checkpoint")

    def consistency(self, old: int, new: int) -> list[bytes]:
        return _hashes(self._json(f"/audit/proof/consistency?old={old}&new={new}"))

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return _hashes(self._json(f"/audit/proof/inclusion?index={index}&size={size}"))

    def rotations(self) -> list[tuple[int, str]]:
        doc = self._json("/audit/key-rotations")
        if not isinstance(doc, list):
            raise LogUnavailable("key-rotations is not a list")
        return [(int(r["index"]), str(r["entry"])) for r in doc]

    def post_cosignature(self, note: bytes) -> None:
        self._request("/audit/cosignature", note)
