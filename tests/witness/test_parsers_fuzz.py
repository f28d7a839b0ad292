"""Hostile bytes at every parser a log, a witness or a verifier exposes: each refuses with
its own error, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processor.audit.note import Note, NoteError, Verifier
from stream_processor.audit.tlog import TreeHead
from stream_processor.rights.receipt_qr import parse_receipt
from stream_processor.witness.push import parse_request

pytestmark = pytest.mark.unit

VALID = (
    "old 3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
    "acme.example\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n"
    "\u2014 acme.example AAAAAAAA\n"
)


def mutations() -> st.SearchStrategy[bytes]:
    valid = VALID.encode()
    flips = st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)).map(
        lambda t: valid[: t[0]] + bytes([t[1]]) + valid[t[0] + 1 :]
    )
    cuts = st.integers(0, len(valid)).map(lambda n: valid[:n])
    return st.one_of(st.binary(max_size=400), flips, cuts)


@settings(max_examples=300, deadline=None)
@given(mutations())
def test_add_checkpoint_parser_refuses_with_value_error_only(body: bytes) -> None:
    try:
        old, proof, note, head = parse_request(body)
    except ValueError:
        return
    assert old >= 0 and all(len(p) <= 64 for p in proof) and head.size >= 0 and note.signatures


@settings(max_examples=300, deadline=None)
@given(mutations())
def test_note_and_checkpoint_parsers_refuse_with_note_error_only(body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    try:
        note = Note.parse(text.split("\n\n", 1)[-1])
        TreeHead.parse(note.text)
    except NoteError:
        pass
    try:
        Verifier.parse(text)
    except NoteError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_receipt_text_parser_refuses_with_value_error_only(text: str) -> None:
    for candidate in (text, "FG1:" + text.upper()):
        with pytest.raises(ValueError):
            parse_receipt(candidate)


@settings(max_examples=200, deadline=None)
@given(mutations())
def test_reference_witness_answers_hostile_bodies_with_a_status(body: bytes) -> None:
    import importlib.util
    import tempfile
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from stream_processor.audit.note import Signer
    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location(
        "reference_witness", REPO / "docs" / "verifier" / "reference_witness.py"
    )
    assert spec is not None and spec.loader is not None
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    log_key = Signer("acme.example", Ed25519PrivateKey.generate()).verifier.vkey()
    with tempfile.TemporaryDirectory() as tmp:
        witness = ref.Witness(
            "w.example/w", Ed25519PrivateKey.generate(), Path(tmp) / "s", [log_key]
        )
        try:
            witness.add_checkpoint(body)
        except ref.Reject as r:
            assert r.status in (400, 403, 404, 409, 422)
