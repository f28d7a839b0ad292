"""verify_witnessed, finding by finding: each way a C2SP checkpoint can disagree with the log."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_processor.audit.note import COSIGNATURE_V1, Note, Signer, Verifier
from stream_processor.audit.tlog import TreeHead, operator_signer
from stream_processor.audit.verify import read_lines
from stream_processor.audit.witnessed import verify_witnessed
from tests.support.tlog import TlogRig

pytestmark = pytest.mark.unit


def codes(
    rig: TlogRig, notes: list[Note], require: int = 0, origin: str | None = None
) -> list[str]:
    w = [Verifier.parse(rig.witness.vkey)]
    report = verify_witnessed(
        read_lines(rig.audit.paths.log), notes, rig.audit.key.public, w, require, origin
    )
    return [f.code for f in report.findings]


def test_each_disagreement_is_named(tlog_rig: TlogRig) -> None:
    rig = tlog_rig
    rig.add(6)
    rig.checkpoint()
    assert rig.witness.run_once().size == 6
    good = rig.audit.checkpoints.latest()
    assert good is not None
    assert codes(rig, [good], require=1) == []
    op = operator_signer(rig.audit.key, rig.audit.settings.log_id)
    root = TreeHead.parse(good.text).root
    longer = TreeHead(rig.audit.settings.log_id, 9, root).text()
    assert codes(rig, [Note(longer, (op.sign(longer),))]) == ["truncated"]
    other_root = TreeHead(rig.audit.settings.log_id, 6, bytes(32)).text()
    assert codes(rig, [Note(other_root, (op.sign(other_root),))]) == ["tree_mismatch"]
    stranger = Signer(rig.audit.settings.log_id, Ed25519PrivateKey.generate())
    assert codes(rig, [Note(good.text, (stranger.sign(good.text),))]) == ["bad_signature"]
    assert codes(rig, [good], origin="someone-else") == ["wrong_origin"]
    # Cosigned by someone, but not by a key the verifier was given: not witnessed.
    other = Signer("x.example/w", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    unknown = Note(good.text, (good.signatures[0], other.sign(good.text)))
    assert codes(rig, [unknown], require=1) == ["not_witnessed"]
