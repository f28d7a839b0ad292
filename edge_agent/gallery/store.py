"""The gallery file: one AES-256-GCM sealed msgpack document, written atomically.

    magic "FGGAL2\\n" | 12-byte nonce | ciphertext + 16-byte tag   (AAD = magic)

Inside, each resident's templates are sealed again under a data key of their
own, kept in the keyring beside the gallery (``sealing.py``): erasing a
resident destroys their key, so an older copy of this file yields nothing of
them. ``seal``/``open_bytes`` are the plain document seal (format 1, also
read from galleries written before data keys, and used for bundles).

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
from edge_agent.gallery.sealing import (
    Keyring,
    assign_keys,
    keyring_path,
    open_keyring,
    open_records,
    seal_keyring,
    sealed_copy,
)

MAGIC = b"FGGAL1\n"
#: The on-disk format with per-resident data keys.
MAGIC_SHREDDABLE = b"FGGAL2\n"
NONCE_BYTES = 12
T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(GalleryData)


class GalleryFile:
    def __init__(self, path: Path, key: bytes, keyring_file: Path | None = None) -> None:
        if len(key) != 32:
            raise GalleryKeyError("gallery key must be 32 bytes")
        self.path = path
        self.keyring_file = keyring_file or keyring_path(path)
        self._key = key
        self._aead = AESGCM(key)

    def seal(self, data: GalleryData, magic: bytes = MAGIC) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return magic + nonce + self._aead.encrypt(nonce, _encoder.encode(data), magic)

    def open_bytes(self, blob: bytes) -> GalleryData:
        magic = MAGIC_SHREDDABLE if blob.startswith(MAGIC_SHREDDABLE) else MAGIC
        if not blob.startswith(magic):
            raise GalleryError(f"{self.path} is not a facegate gallery")
        nonce = blob[len(magic) : len(magic) + NONCE_BYTES]
        try:
            plain = self._aead.decrypt(nonce, blob[len(magic) + NONCE_BYTES :], magic)
        except InvalidTag:
            raise GalleryKeyError(
                f"cannot open {self.path}: wrong gallery key, or the file was modified"
            ) from None
        try:
            return _decoder.decode(plain)
        except msgspec.DecodeError as exc:
            raise GalleryError(f"{self.path}: unreadable content ({exc})") from None

    def load(self) -> GalleryData:
        """The gallery with its templates opened; an absent file is an empty gallery."""
        if not self.path.exists():
            return GalleryData()
        blob = self.path.read_bytes()
        data = self.open_bytes(blob)
        if blob.startswith(MAGIC_SHREDDABLE):
            open_records(data, self.keyring(), self.path)
        return data

    def keyring(self) -> Keyring:
        """The data keys the gate holds (empty before the first save)."""
        if not self.keyring_file.exists():
            return {}
        return open_keyring(self.keyring_file.read_bytes(), self._key, self.keyring_file)

    def stamp(self) -> tuple[int, int] | None:
        """(mtime_ns, size) to notice another process's write cheaply."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def save(self, data: GalleryData) -> None:
        """Write the gallery; the keys of templates no longer in it are destroyed.

        The keyring is written first with the old and new keys, so a crash at
        any point leaves a gallery whose keys are all in the keyring; once the
        gallery is in place, the keyring is written again with only its keys.
        """
        held = self.keyring()
        needed = assign_keys(data, held)
        _write_atomic(self.keyring_file, seal_keyring({**held, **needed}, self._key))
        _write_atomic(self.path, self.seal(sealed_copy(data, needed), MAGIC_SHREDDABLE))
        if needed.keys() != held.keys() | needed.keys():
            _write_atomic(self.keyring_file, seal_keyring(needed, self._key))

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


def _write_atomic(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
