"""A lost or replaced operator key is a logged entry a witness cosigns, never a silent new key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_processor.audit.entries import EntryType, decode_entry
from stream_processor.audit.keys import KEY_FILE
from stream_processor.audit.note import Note, Signer, Verifier, valid_signatures
from stream_processor.audit.tlog import TreeHead
from stream_processor.witness.service import Result
from tests.support.tlog import TlogRig, audit_verify

pytestmark = pytest.mark.e2e


def entries(rig: TlogRig) -> list:  # type: ignore[type-arg]
    return [decode_entry(x) for x in rig.audit.paths.log.read_bytes().splitlines()]


def test_removed_key_yields_a_logged_cosigned_rotation(tlog_rig: TlogRig) -> None:
    rig = tlog_rig
    rig.add(4)
    rig.checkpoint()
    assert rig.witness.run_once().result == Result.COSIGNED
    old_id = rig.audit.key.key_id
    (rig.audit.paths.secrets / KEY_FILE).unlink()
    rig.reopen()  # the operator's processes restart without the key
    new_id = rig.audit.key.key_id
    assert new_id != old_id
    last = entries(rig)[-1]
    assert last.type == EntryType.KEY_ROTATED
    assert last.body["reason"] == "key_lost"
    assert last.body["old_key_id"] == old_id and last.body["new_key_id"] == new_id
    assert Verifier.parse(last.body["new_vkey"]).public.public_bytes_raw() == (
        rig.audit.key.key.public_key().public_bytes_raw()
    )
    rig.reopen()  # a second restart logs nothing more
    assert sum(e.type == EntryType.KEY_ROTATED for e in entries(rig)) == 1
    rig.add(2, tag="after")
    rig.checkpoint()
    out = rig.witness.run_once()
    assert out.result == Result.COSIGNED and "learned the rotated key of entry 4" in out.reason
    served = Note.parse(rig.audit.checkpoints.latest().encode())  # type: ignore[union-attr]
    assert valid_signatures(served, [Verifier.parse(rig.witness.vkey)])
    assert TreeHead.parse(served.text).size == 7  # the rotation entry is inside
    ok = audit_verify(rig, "--witness-key", rig.witness.vkey, "--require-witnesses", "1")
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_silently_replaced_key_is_refused(tlog_rig: TlogRig) -> None:
    rig = tlog_rig
    rig.add(3)
    rig.checkpoint()
    assert rig.witness.run_once().result == Result.COSIGNED
    # A new key that signs without a key_rotated entry in the log.
    silent = Signer(rig.audit.settings.log_id, Ed25519PrivateKey.generate())
    rig.add(2, tag="x")
    rig.audit.tree.sync()
    head = TreeHead(rig.audit.settings.log_id, 5, rig.audit.tree.root(5))
    rig.audit.checkpoints.add(Note(head.text(), (silent.sign(head.text()),)))
    out = rig.witness.run_once()
    assert out.result == Result.UNTRUSTED
    # A rotation entry naming the key, but for a key that did not sign: still refused.
    assert rig.witness_state.learned_keys(rig.audit.settings.log_id) == []
