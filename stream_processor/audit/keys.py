"""The operator's Ed25519 signing key (checkpoints and receipts) and its public half.

The private key is created on first use at ``<state>/secrets/audit-ed25519.pem``
(PKCS#8 PEM, mode 0600) and never leaves the state directory. The public key
is what residents, courts and notaries need: ``facegate audit public-key``.
A key is named by its ``key_id``: the first 16 bytes of SHA-256 of the raw
public key, hex.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stream_processor.audit.errors import KeyFileError

KEY_FILE = "audit-ed25519.pem"


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class PublicKey:
    """What a verifier holds."""

    key: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id_of(self.key)

    def verify(self, signature_b64: str, message: bytes) -> bool:
        try:
            signature = base64.b64decode(signature_b64, validate=True)
            self.key.verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    @classmethod
    def from_pem(cls, data: bytes) -> PublicKey:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFileError(f"not a PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError("the public key is not an Ed25519 key")
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> PublicKey:
        try:
            return cls.from_pem(path.read_bytes())
        except OSError as exc:
            raise KeyFileError(f"cannot read public key {path}: {exc}") from exc


_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----\s*", re.S)


@dataclass(frozen=True)
class Keyring:
    """Every public key the operator has signed with (one PEM file may hold several:
    after ``facegate audit rotate-key`` the new key is appended, the old one stays)."""

    keys: tuple[PublicKey, ...]

    def get(self, key_id: str) -> PublicKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    @property
    def key_ids(self) -> list[str]:
        return [k.key_id for k in self.keys]

    @classmethod
    def of(cls, keys: PublicKey | Keyring) -> Keyring:
        return keys if isinstance(keys, Keyring) else cls((keys,))

    @classmethod
    def from_pem(cls, data: bytes) -> Keyring:
        blocks = _PEM_BLOCK.findall(data)
        if not blocks:
            raise KeyFileError("no PEM public key found")
        return cls(tuple(PublicKey.from_pem(b) for b in blocks))

    @classmethod
    def load(cls, *paths: Path) -> Keyring:
        keys: list[PublicKey] = []
        for path in paths:
            try:
                keys.extend(cls.from_pem(path.read_bytes()).keys)
            except OSError as exc:
                raise KeyFileError(f"cannot read public key {path}: {exc}") from exc
        return cls(tuple(keys))


@dataclass(frozen=True)
class OperatorKey:
    """The signing key of the operator."""

    key: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key())

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> str:
        """Ed25519 signature of ``message``, base64."""
        return base64.b64encode(self.key.sign(message)).decode("ascii")

    @classmethod
    def generate(cls) -> OperatorKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, secrets_dir: Path) -> OperatorKey:
        """Read ``<secrets_dir>/audit-ed25519.pem``, creating it (0600) on first use."""
        path = secrets_dir / KEY_FILE
        if not path.exists():
            secrets_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(secrets_dir, 0o700)
            if (key := create_key_file(path)) is not None:
                return cls(key)
        return cls.load(path)

    @classmethod
    def rotate(cls, secrets_dir: Path) -> tuple[OperatorKey, OperatorKey]:
        """Retire the current key (kept as ``audit-ed25519.<key_id>.retired.pem``) and
        create a new one. Returns (old, new)."""
        old = cls.load(secrets_dir / KEY_FILE)
        retired = secrets_dir / f"audit-ed25519.{old.key_id}.retired.pem"
        os.replace(secrets_dir / KEY_FILE, retired)
        return old, cls.load_or_create(secrets_dir)

    @classmethod
    def load(cls, path: Path) -> OperatorKey:
        return cls(load_key_file(path, "operator key"))


def create_key_file(path: Path) -> Ed25519PrivateKey | None:
    """A new Ed25519 key, written to ``path`` (PKCS#8 PEM, mode 0600); None when the
    file exists (another process may have created it first: load that one)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def load_key_file(path: Path, what: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``; ``what`` names it in the error."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot load {what} {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 private key")
    return key
