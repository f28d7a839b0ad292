"""C2SP signed notes (``signed-note``) with Ed25519 signatures and ``cosignature/v1``.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(4-byte key hash ‖ signature)``. The key hash is
``SHA-256(name ‖ "\\n" ‖ type ‖ public key)[:4]`` with type 0x01 for a plain
Ed25519 note signature (the log's) and 0x04 for a ``cosignature/v1`` (a
witness's), whose signature is an 8-byte big-endian timestamp ‖ Ed25519 over
``"cosignature/v1\\ntime <t>\\n" ‖ note text``. A verifier key is written
``<name>+<key hash, 8 hex digits>+<base64(type ‖ public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stream_processor.audit.errors import AuditError

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014"
_NAME = re.compile(r"^[^\s+\u2014]+$")


class NoteError(AuditError):
    """A note, signature line or verifier key is malformed."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, kind: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


@dataclass(frozen=True)
class Signature:
    """One signature line: ``— name base64(key hash ‖ sig)``."""

    name: str
    key_hash: bytes
    sig: bytes

    def line(self) -> str:
        return f"{DASH} {self.name} {base64.b64encode(self.key_hash + self.sig).decode()}\n"

    @classmethod
    def parse(cls, line: str) -> Signature:
        parts = line.rstrip("\n").split(" ")
        if len(parts) != 3 or parts[0] != DASH or not _NAME.fullmatch(parts[1]):
            raise NoteError(f"not a note signature line: {line[:80]!r}")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError as exc:  # binascii.Error, or text that is not ASCII
            raise NoteError(f"signature is not base64: {exc}") from exc
        if len(blob) < 5:
            raise NoteError("signature too short")
        return cls(parts[1], blob[:4], blob[4:])


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...] = ()

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()

    def with_signatures(self, *sigs: Signature) -> Note:
        have = set(self.signatures)
        return Note(self.text, self.signatures + tuple(s for s in sigs if s not in have))

    @classmethod
    def parse(cls, data: bytes | str) -> Note:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        cut = text.rfind("\n\n")
        if cut < 0 or not text.endswith("\n"):
            raise NoteError("a signed note is text, a blank line and signature lines")
        body, sigs = text[: cut + 1], text[cut + 2 :]
        lines = sigs.split("\n")[:-1]
        if not lines:
            raise NoteError("the note has no signature")
        return cls(body, tuple(Signature.parse(x) for x in lines))


@dataclass(frozen=True)
class Verifier:
    """A public key that checks one kind of note signature."""

    name: str
    kind: int
    public: Ed25519PublicKey

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.kind, _raw(self.public))

    def vkey(self) -> str:
        blob = base64.b64encode(bytes([self.kind]) + _raw(self.public)).decode()
        return f"{self.name}+{self.key_hash.hex()}+{blob}"

    def matches(self, sig: Signature) -> bool:
        return sig.name == self.name and sig.key_hash == self.key_hash

    def verify(self, text: str, sig: Signature) -> int | None:
        """Checks ``sig`` on ``text``: None if it does not verify, else its
        timestamp (cosignatures) or 0 (plain note signatures)."""
        if not self.matches(sig):
            return None
        if self.kind == COSIGNATURE_V1:
            if len(sig.sig) != 72:
                return None
            stamp = int.from_bytes(sig.sig[:8], "big")
            message = cosigned_message(text, stamp)
            raw = sig.sig[8:]
        else:
            stamp, message, raw = 0, text.encode(), sig.sig
        try:
            self.public.verify(raw, message)
        except InvalidSignature:
            return None
        return stamp

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not _NAME.fullmatch(parts[0]):
            raise NoteError(f"not a verifier key (<name>+<hash>+<key>): {vkey[:80]!r}")
        try:
            blob = base64.b64decode(parts[2], validate=True)
            hash_ = bytes.fromhex(parts[1])
        except (binascii.Error, ValueError) as exc:
            raise NoteError(f"verifier key is malformed: {exc}") from exc
        if len(blob) != 33 or blob[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("only Ed25519 note (0x01) and cosignature/v1 (0x04) keys are supported")
        verifier = cls(parts[0], blob[0], Ed25519PublicKey.from_public_bytes(blob[1:]))
        if verifier.key_hash != hash_:
            raise NoteError("the verifier key's hash does not match its name and key")
        return verifier


def check_verifier_keys(keys: list[str], kind: int, wrong_kind: str) -> list[str]:
    """For a settings validator: each key parses and is of ``kind``; else ``ValueError``
    (``wrong_kind`` may name the key as ``{name}``)."""
    for key in keys:
        try:
            found = Verifier.parse(key).kind
        except NoteError as exc:
            raise ValueError(str(exc)) from None
        if found != kind:
            raise ValueError(wrong_kind.format(name=key.split("+")[0]))
    return keys


def cosigned_message(text: str, stamp: int) -> bytes:
    return f"cosignature/v1\ntime {stamp}\n".encode() + text.encode()


@dataclass(frozen=True)
class Signer:
    """Signs notes (kind 0x01) or cosigns checkpoints (kind 0x04) under ``name``."""

    name: str
    key: Ed25519PrivateKey
    kind: int = ED25519
    clock: Callable[[], float] = time.time

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.kind, self.key.public_key())

    def sign(self, text: str) -> Signature:
        if not text.endswith("\n"):
            raise NoteError("note text must end with a newline")
        if self.kind == COSIGNATURE_V1:
            stamp = int(self.clock())
            raw = struct.pack(">Q", stamp) + self.key.sign(cosigned_message(text, stamp))
        else:
            raw = self.key.sign(text.encode())
        return Signature(self.name, self.verifier.key_hash, raw)


def valid_signatures(note: Note, verifiers: list[Verifier]) -> list[tuple[Verifier, int]]:
    """(verifier, timestamp) for each verifier with a valid signature on the note."""
    out: list[tuple[Verifier, int]] = []
    for v in verifiers:
        for sig in note.signatures:
            stamp = v.verify(note.text, sig)
            if stamp is not None:
                out.append((v, stamp))
                break
    return out
