"""Crypto-shredding: each resident's templates sealed under a data key of their own.

The data keys live in a keyring file beside the gallery, sealed under the
gallery key; the gallery file holds only the sealed templates and the id of
the data key that opens them. Erasure or a withdrawn consent drops the
record's key id, and the next save writes a keyring without that key: from
then on no key the gate holds opens the templates, in the current gallery or
in any older copy of it. (An older copy of the keyring would; it is small and
is rewritten on every change, and must be kept out of backups like the
gallery key: see docs/edge.md.)

    keyring:   magic "FGKEY1\\n" | 12-byte nonce | AES-256-GCM(gallery key, msgpack
               {key id: 32-byte data key})                       (AAD = magic)
    template:  12-byte nonce | AES-256-GCM(data key, float32 bytes)
               (AAD = "FGTPL1" | pseudonym | 0x00 | key id)
"""

from __future__ import annotations

import secrets
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_agent.errors import GalleryError, GalleryKeyError
from edge_agent.gallery.model import GalleryData, Record

KEYRING_MAGIC = b"FGKEY1\n"
TEMPLATE_AAD = b"FGTPL1"
NONCE_BYTES = 12
DATA_KEY_BYTES = 32

Keyring = dict[str, bytes]

_keyring_decoder = msgspec.msgpack.Decoder(dict[str, bytes])


def keyring_path(gallery_path: Path) -> Path:
    return gallery_path.with_name(gallery_path.name + ".keys")


def seal_keyring(keyring: Keyring, gallery_key: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    body = msgspec.msgpack.encode(keyring)
    return KEYRING_MAGIC + nonce + AESGCM(gallery_key).encrypt(nonce, body, KEYRING_MAGIC)


def open_keyring(blob: bytes, gallery_key: bytes, where: Path) -> Keyring:
    if not blob.startswith(KEYRING_MAGIC):
        raise GalleryError(f"{where} is not a facegate keyring")
    nonce = blob[len(KEYRING_MAGIC) : len(KEYRING_MAGIC) + NONCE_BYTES]
    try:
        plain = AESGCM(gallery_key).decrypt(
            nonce, blob[len(KEYRING_MAGIC) + NONCE_BYTES :], KEYRING_MAGIC
        )
    except InvalidTag:
        raise GalleryKeyError(
            f"cannot open {where}: wrong gallery key, or the file was modified"
        ) from None
    return _keyring_decoder.decode(plain)


def _aad(record: Record, key_id: str) -> bytes:
    return TEMPLATE_AAD + record.pseudonym.encode() + b"\x00" + key_id.encode()


def seal_template(plain: bytes, data_key: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(data_key).encrypt(nonce, plain, aad)


def open_template(sealed: bytes, data_key: bytes, aad: bytes) -> bytes:
    """Raises ``InvalidTag`` for any key but the template's own."""
    return AESGCM(data_key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)


def template_aad(record: Record) -> bytes:
    """The associated data of ``record``'s sealed templates (binds them to it)."""
    if record.key_id is None:
        raise GalleryError(f"record {record.pseudonym} has sealed templates but no key id")
    return _aad(record, record.key_id)


def assign_keys(data: GalleryData, keyring: Keyring) -> Keyring:
    """The keyring ``data`` needs: a key per record with templates, new ones made here.

    Keys of records without templates (withdrawn, erased, or never enrolled by
    face) are not in it, so writing it destroys them.
    """
    needed: Keyring = {}
    for record in data.records:
        if not record.templates:
            record.key_id = None
            continue
        if record.key_id is None or record.key_id not in keyring:
            record.key_id = secrets.token_hex(8)
            needed[record.key_id] = secrets.token_bytes(DATA_KEY_BYTES)
        else:
            needed[record.key_id] = keyring[record.key_id]
    return needed


def sealed_copy(data: GalleryData, keyring: Keyring) -> GalleryData:
    """``data`` with every template sealed under its record's data key."""
    records = []
    for r in data.records:
        aad = template_aad(r) if r.templates else b""
        sealed = [seal_template(t, keyring[r.key_id], aad) for t in r.templates if r.key_id]
        records.append(msgspec.structs.replace(r, templates=sealed))
    return msgspec.structs.replace(data, records=records)


def open_records(data: GalleryData, keyring: Keyring, where: Path) -> GalleryData:
    """Open every template in place; a missing or wrong data key fails loudly."""
    for r in data.records:
        if not r.templates:
            continue
        key = keyring.get(r.key_id or "")
        if key is None:
            raise GalleryKeyError(
                f"{where}: the data key of a record is not in the keyring (its templates "
                "were shredded: is this an old copy of the gallery?)"
            )
        aad = template_aad(r)
        try:
            r.templates = [open_template(t, key, aad) for t in r.templates]
        except InvalidTag:
            raise GalleryKeyError(f"{where}: a template does not open with its data key") from None
    return data
