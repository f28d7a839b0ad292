"""facegate's witness also answers C2SP tlog-witness (POST /add-checkpoint): the log's own
push client gets cosignatures from it, and a rewritten log gets 422 and a fork statement."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_processor.audit.cosign import Witness, WitnessRefused, add_checkpoint_body, cosign_with
from stream_processor.audit.note import Note, Signer, Verifier, valid_signatures
from stream_processor.witness.http import create_witness_app
from tests.support.tlog import Served, TlogRig

pytestmark = pytest.mark.unit


@pytest.fixture
def pushed(tlog_rig: TlogRig) -> Iterator[tuple[TlogRig, Witness]]:
    server = Served(create_witness_app(tlog_rig.witness, tlog_rig.registry, 3600, pull=False))
    try:
        yield tlog_rig, Witness(server.url, (Verifier.parse(tlog_rig.witness.vkey),))
    finally:
        server.close()


def post(url: str, body: bytes) -> tuple[int, str]:
    req = urllib.request.Request(url + "/add-checkpoint", data=body)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_push_cosigns_extensions_and_refuses_the_rewrite(
    pushed: tuple[TlogRig, Witness],
) -> None:
    rig, witness = pushed
    rig.add(5)
    rig.checkpoint()
    note = rig.audit.checkpoints.latest()
    assert note is not None
    sigs = cosign_with(witness, note, rig.audit.tree, rig.audit.checkpoints)
    assert valid_signatures(Note(note.text, tuple(sigs)), list(witness.verifiers))
    rig.add(4, tag="more")
    rig.checkpoint()
    grown = rig.audit.checkpoints.latest()
    assert grown is not None
    cosign_with(witness, grown, rig.audit.tree, rig.audit.checkpoints)
    assert rig.registry.get_sample_value("facegate_witness_cosigned_tree_size") == 9
    # Stale old size: 409 with the size it holds, as the protocol says.
    status, text = post(witness.url, add_checkpoint_body(5, [], grown))
    assert (status, text) == (409, "9\n")
    rig.rewrite_without(2)
    rig.add(3, tag="cover")
    rig.checkpoint()
    forged = rig.audit.checkpoints.latest()
    assert forged is not None
    with pytest.raises(WitnessRefused) as refused:
        cosign_with(witness, forged, rig.audit.tree, rig.audit.checkpoints)
    assert refused.value.status == 422
    assert rig.registry.get_sample_value("facegate_witness_fork_detected") == 1
    assert len(rig.witness_state.fork_statements()) == 1


def test_push_protocol_errors(pushed: tuple[TlogRig, Witness]) -> None:
    rig, witness = pushed
    rig.add(2)
    rig.checkpoint()
    note = rig.audit.checkpoints.latest()
    assert note is not None
    assert post(witness.url, b"garbage")[0] == 400
    assert post(witness.url, b"old 01\n\n" + note.encode())[0] == 400
    assert post(witness.url, b"old 3\n\n" + note.encode())[0] == 400  # above the size
    stranger = Signer("elsewhere.example", Ed25519PrivateKey.generate())
    other = Note(note.text.replace(rig.audit.settings.log_id, "elsewhere.example", 1), ())
    other = Note(other.text, (stranger.sign(other.text),))
    assert post(witness.url, add_checkpoint_body(0, [], other))[0] == 404
    forged = Note(
        note.text,
        (Signer(rig.audit.settings.log_id, Ed25519PrivateKey.generate()).sign(note.text),),
    )
    assert post(witness.url, add_checkpoint_body(0, [], forged))[0] == 403
    assert post(witness.url, add_checkpoint_body(0, [b"\x00" * 32], note))[0] == 422
    assert rig.witness_state.head(rig.audit.settings.log_id) is None
