"""C2SP signed notes, verifier keys and cosignature/v1: formats and tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_processor.audit.note import (
    COSIGNATURE_V1,
    ED25519,
    Note,
    NoteError,
    Signer,
    Verifier,
    cosigned_message,
    valid_signatures,
)
from stream_processor.audit.tlog import TreeHead

pytestmark = pytest.mark.unit

TEXT = TreeHead("acme.example", 20852163, bytes(range(32))).text()


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_checkpoint_text_and_note_layout() -> None:
    assert TEXT == "acme.example\n20852163\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    key = Ed25519PrivateKey.generate()
    note = Note(TEXT, (Signer("acme.example", key).sign(TEXT),))
    data = note.encode().decode()
    body, sig_line = data.split("\n\n")
    assert body + "\n" == TEXT
    assert sig_line.startswith("\u2014 acme.example ") and sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    want = hashlib.sha256(b"acme.example\n\x01" + raw(key)).digest()[:4]
    assert blob[:4] == want and len(blob) == 68
    assert Note.parse(data) == note


def test_verifier_key_format_round_trips() -> None:
    key = Ed25519PrivateKey.generate()
    signer = Signer("acme.example", key)
    vkey = signer.verifier.vkey()
    name, hash_hex, blob = vkey.split("+", 2)
    assert name == "acme.example" and len(hash_hex) == 8
    assert base64.b64decode(blob) == b"\x01" + raw(key)
    parsed = Verifier.parse(vkey)
    assert parsed.kind == ED25519 and parsed.vkey() == vkey
    with pytest.raises(NoteError):
        Verifier.parse(vkey.replace(hash_hex, "00000000"))
    with pytest.raises(NoteError):
        Verifier.parse("no-plus-signs")


def test_cosignature_v1_message_and_timestamp() -> None:
    key = Ed25519PrivateKey.generate()
    cosigner = Signer("notary.example/w1", key, COSIGNATURE_V1, clock=lambda: 1679315147.9)
    sig = cosigner.sign(TEXT)
    assert sig.key_hash == hashlib.sha256(b"notary.example/w1\n\x04" + raw(key)).digest()[:4]
    assert sig.sig[:8] == (1679315147).to_bytes(8, "big") and len(sig.sig) == 72
    key.public_key().verify(sig.sig[8:], cosigned_message(TEXT, 1679315147))
    assert cosigned_message(TEXT, 1).startswith(b"cosignature/v1\ntime 1\nacme.example\n")
    assert cosigner.verifier.verify(TEXT, sig) == 1679315147


def test_tampered_notes_and_wrong_keys_fail() -> None:
    log_key, witness_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signer = Signer("acme.example", log_key)
    cosigner = Signer("notary.example/w1", witness_key, COSIGNATURE_V1)
    note = Note(TEXT, (signer.sign(TEXT), cosigner.sign(TEXT)))
    both = [signer.verifier, cosigner.verifier]
    assert len(valid_signatures(note, both)) == 2
    changed = Note(TEXT.replace("20852163", "20852162"), note.signatures)
    assert valid_signatures(changed, both) == []
    impostor = Signer("acme.example", Ed25519PrivateKey.generate())
    assert valid_signatures(note, [impostor.verifier]) == []
    # A cosignature key is not a note key, even over the same public key.
    assert (
        Verifier("notary.example/w1", ED25519, witness_key.public_key()).verify(
            TEXT, note.signatures[1]
        )
        is None
    )
    for bad in ("no blank line\n", TEXT + "\n", TEXT + "\n- x y\n", TEXT + "\n\u2014 a b!\n"):
        with pytest.raises(NoteError):
            Note.parse(bad)
