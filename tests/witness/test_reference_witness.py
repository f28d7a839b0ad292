"""docs/verifier/reference_witness.py (standard library + cryptography, no facegate code)
agrees with facegate's witness on every checkpoint of a test log, byte for byte."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from types import ModuleType

import pytest

from stream_processor.audit.cosign import Witness, WitnessRefused, cosign_with
from stream_processor.audit.note import Verifier
from stream_processor.audit.tlog import TreeHead
from stream_processor.witness.service import Result
from tests.conftest import REPO
from tests.support.tlog import TlogRig, operator_vkey

pytestmark = pytest.mark.unit


def load_reference() -> ModuleType:
    path = REPO / "docs" / "verifier" / "reference_witness.py"
    spec = importlib.util.spec_from_file_location("reference_witness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_witness_agrees_on_every_checkpoint(tlog_rig: TlogRig, tmp_path: Path) -> None:
    rig = tlog_rig
    ref = load_reference()
    # The same witness key on both sides: equal decisions give equal cosignatures.
    key = ref.load_key(tmp_path / "witness" / "witness-ed25519.pem")
    reference = ref.Witness(
        "notary.example/w1", key, tmp_path / "ref-state.json", [operator_vkey(rig.audit)]
    )
    reference.clock = rig.clock
    assert reference.vkey() == rig.witness.vkey
    server = ref.serve(reference, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    as_witness = Witness(url, (Verifier.parse(reference.vkey()),))
    decisions: list[tuple[int, bool, bool]] = []

    def step() -> None:
        store = rig.audit.checkpoints  # reopened after the rewrite
        note = store.latest()
        assert note is not None
        size = TreeHead.parse(note.text).size
        before = set(store.get(size).signatures)  # type: ignore[union-attr]
        project = rig.witness.run_once()
        try:
            cosign_with(as_witness, note, rig.audit.tree, store)
            accepted = True
        except WitnessRefused:
            accepted = False
        decisions.append((size, project.result == Result.COSIGNED, accepted))
        if accepted:
            new = set(store.get(size).signatures) - before  # type: ignore[union-attr]
            assert len(new) == 1, "both witnesses made the very same cosignature"

    try:
        for n in (3, 2, 0, 4, 1, 7):
            rig.add(n, tag=f"round-{len(decisions)}")
            rig.checkpoint()
            step()
            rig.clock.advance(5)
        rig.rewrite_without(5)
        rig.add(2, tag="cover")
        rig.checkpoint()
        step()
    finally:
        server.shutdown()
        server.server_close()
    assert [(p, r) for _, p, r in decisions] == [(True, True)] * 6 + [(False, False)]
    assert [s for s, _, _ in decisions] == [3, 5, 5, 9, 10, 17, 18]
