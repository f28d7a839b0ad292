"""The gallery file: one AES-256-GCM sealed msgpack document, written atomically.

    magic "FGGAL1\\n" | 12-byte nonce | ciphertext + 16-byte tag   (AAD = magic)

Nothing in the file is readable without the key; a wrong key or a modified
file fails the tag check and raises :class:`GalleryKeyError` — it never
returns partial or guessed data. Writers take an exclusive ``flock`` on a
side file, so the CLI and a running agent can both update the gallery.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_agent.errors import GalleryError, GalleryKeyError
from edge_agent.gallery.model import GalleryData

MAGIC = b"FGGAL1\n"
NONCE_BYTES = 12
T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(GalleryData)


class GalleryFile:
    def __init__(self, path: Path, key: bytes) -> None:
        if len(key) != 32:
            raise GalleryKeyError("gallery key must be 32 bytes")
        self.path = path
        self._aead = AESGCM(key)

    def seal(self, data: GalleryData) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, _encoder.encode(data), MAGIC)

    def open_bytes(self, blob: bytes) -> GalleryData:
        if not blob.startswith(MAGIC):
            raise GalleryError(f"{self.path} is not a facegate gallery")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            plain = self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], MAGIC)
        except InvalidTag:
            raise GalleryKeyError(
                f"cannot open {self.path}: wrong gallery key, or the file was modified"
            ) from None
        try:
            return _decoder.decode(plain)
        except msgspec.DecodeError as exc:
            raise GalleryError(f"{self.path}: unreadable content ({exc})") from None

    def load(self) -> GalleryData:
        """The gallery; an absent file is an empty gallery."""
        if not self.path.exists():
            return GalleryData()
        return self.open_bytes(self.path.read_bytes())

    def stamp(self) -> tuple[int, int] | None:
        """(mtime_ns, size) to notice another process's write cheaply."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def save(self, data: GalleryData) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.seal(data))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def update(self, change: Callable[[GalleryData], T]) -> tuple[T, GalleryData]:
        """Read, apply ``change`` in place, write — under the lock. Returns its result."""
        with self._locked():
            data = self.load()
            result = change(data)
            self.save(data)
            return result, data
