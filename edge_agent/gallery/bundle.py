"""Gallery bundles: a site's gallery, enrolled once at the office, carried to every gate.

    magic "FGBDL1\\n" | u32 header length | header (JSON) | sealed gallery | Ed25519 signature

The sealed gallery is the gallery file's own sealing under the *site's* gallery key
(every gate of a site and its office share that key), so a bundle decrypts nowhere
else. The office's Ed25519 key signs everything before the signature; a gate checks
it with the office's public key, then refuses a bundle whose version is not above
the last one it imported (a replayed older bundle would bring back erased residents).
Templates never leave the site: the bundle travels over the site's own network or by
hand, and nothing in it is readable without the site's gallery key.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.errors import GalleryError
from edge_agent.gallery.model import GalleryData
from edge_agent.gallery.store import GalleryFile

MAGIC = b"FGBDL1\n"
SIGNATURE_BYTES = 64
_LEN = struct.Struct(">I")
#: A header larger than this is not one of ours; refused before parsing.
MAX_HEADER_BYTES = 4096


class BundleError(GalleryError):
    """A gallery bundle is malformed, not signed by the office, for another site, or old."""


class BundleHeader(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a gate may read before decrypting: no pseudonym, no template."""

    format: int = 1
    site: str
    version: int
    created_ms: int
    residents: int
    templates: int


class ImportState(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The last bundle a gate imported; kept beside its gallery."""

    site: str
    version: int


@dataclass(frozen=True, slots=True)
class Opened:
    header: BundleHeader
    data: GalleryData


def make_bundle(
    data: GalleryData, *, site: str, version: int, created_ms: int,
    site_key: bytes, signing_key: Ed25519PrivateKey,
) -> bytes:
    """Seal ``data`` under the site's gallery key and sign it with the office key."""
    if version < 1:
        raise BundleError("bundle version must be at least 1")
    header = BundleHeader(
        site=site, version=version, created_ms=created_ms, residents=len(data.records),
        templates=sum(len(r.templates) for r in data.records),
    )
    head = msgspec.json.encode(header)
    # Data-key ids are the office gallery's own: each gate makes its own keys on import.
    portable = msgspec.structs.replace(
        data, records=[msgspec.structs.replace(r, key_id=None) for r in data.records]
    )
    sealed = GalleryFile(Path("bundle"), site_key).seal(portable)
    body = MAGIC + _LEN.pack(len(head)) + head + sealed
    return body + signing_key.sign(body)


def read_header(blob: bytes) -> BundleHeader:
    """The header, unverified: for display only."""
    return _split(blob)[0]


def _split(blob: bytes) -> tuple[BundleHeader, bytes]:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _LEN.size + SIGNATURE_BYTES:
        raise BundleError("not a facegate gallery bundle")
    (size,) = _LEN.unpack_from(blob, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if size > MAX_HEADER_BYTES or start + size > len(blob) - SIGNATURE_BYTES:
        raise BundleError("gallery bundle header is malformed")
    try:
        header = msgspec.json.decode(blob[start : start + size], type=BundleHeader)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"gallery bundle header is malformed ({exc})") from None
    return header, blob[start + size : -SIGNATURE_BYTES]


def open_bundle(blob: bytes, *, site_key: bytes, office_key: Ed25519PublicKey) -> Opened:
    """Verify the office's signature, then decrypt. Nothing is trusted before both pass."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + SIGNATURE_BYTES:
        raise BundleError("not a facegate gallery bundle")
    try:
        office_key.verify(blob[-SIGNATURE_BYTES:], blob[:-SIGNATURE_BYTES])
    except InvalidSignature:
        raise BundleError(
            "gallery bundle refused: not signed by this site's office key, or modified"
        ) from None
    header, sealed = _split(blob)
    data = GalleryFile(Path(f"bundle v{header.version}"), site_key).open_bytes(sealed)
    return Opened(header, data)


def check_newer(header: BundleHeader, last: ImportState | None) -> None:
    """Refuse a bundle of another site, or one not newer than the last imported (pure)."""
    if last is None:
        return
    if header.site != last.site:
        raise BundleError(
            f"gallery bundle refused: it is for site {header.site!r}, "
            f"this gate imported bundles of site {last.site!r}"
        )
    if header.version <= last.version:
        raise BundleError(
            f"gallery bundle refused: version {header.version} is not newer than the "
            f"imported version {last.version} (an old bundle could restore erased residents)"
        )


def replace_content(target: GalleryData, source: GalleryData) -> None:
    """Make ``target`` the bundle's gallery, field by field (whatever fields it has)."""
    for name in GalleryData.__struct_fields__:
        setattr(target, name, getattr(source, name))


def state_path(gallery_path: Path) -> Path:
    return gallery_path.with_name(gallery_path.name + ".bundle.json")


def load_state(path: Path) -> ImportState | None:
    if not path.exists():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=ImportState)
    except msgspec.DecodeError as exc:
        raise BundleError(f"{path}: unreadable bundle state ({exc})") from None


def save_state(path: Path, state: ImportState) -> None:
    _write_atomic(path, msgspec.json.encode(state), 0o600)


def _write_atomic(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def create_signing_key(private_path: Path, public_path: Path) -> None:
    """A new office key pair: private PEM (0600, refused if present), public PEM beside."""
    if private_path.exists():
        raise BundleError(f"{private_path} exists; a new key would need every gate re-keyed")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_atomic(private_path, private_pem, 0o600)
    _write_atomic(public_path, public_pem, 0o644)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"cannot load the office signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 private key")
    return key


def load_office_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot load the office public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path} is not an Ed25519 public key")
    return key


def describe(header: BundleHeader) -> str:
    return json.dumps(msgspec.to_builtins(header), sort_keys=True)
