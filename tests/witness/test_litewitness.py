"""Interoperability: litewitness (filippo.io/torchwood, written by no one here) cosigns
facegate's checkpoints through C2SP tlog-witness, and refuses a rewritten log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_processor.audit.cosign import WitnessRefused, cosign_with
from stream_processor.audit.note import Verifier, valid_signatures
from stream_processor.audit.settings import AuditSettings
from stream_processor.audit.wiring import open_audit
from stream_processor.stack.litewitness import Litewitness, ensure_litewitness
from tests.conftest import REPO, free_ports
from tests.support.tlog import ORIGIN, TlogRig, audit_verify, operator_vkey

pytestmark = pytest.mark.component

#: Shared by test runs like Kafka's jars: installing takes ~50 s once.
GOPATH = REPO / "deploy" / "witness" / "target" / "go"
#: Where ``make setup`` (facegate stack install) put it with the default state dir.
SETUP_GOPATH = REPO / ".facegate" / "tools" / "go"


@pytest.fixture(scope="module")
def litewitness_bin() -> Path:
    if (SETUP_GOPATH / "bin" / "litewitness").exists():
        return ensure_litewitness(SETUP_GOPATH)  # already there: a file check
    return ensure_litewitness(GOPATH)


@pytest.fixture
def litewitness(litewitness_bin: Path, tmp_path: Path) -> Iterator[Litewitness]:
    lw = Litewitness(litewitness_bin, tmp_path / "litewitness", "lw.example/w1", free_ports(1)[0])
    lw.start()
    try:
        yield lw
    finally:
        lw.stop()


def test_litewitness_cosigns_and_refuses_the_rewrite(
    tlog_rig: TlogRig, litewitness: Litewitness
) -> None:
    rig = tlog_rig
    lw_key = litewitness.vkey()
    rig.audit.close()
    rig.audit = open_audit(
        rig.state,
        AuditSettings(log_id=ORIGIN, witness_keys=[lw_key], witness_urls=[litewitness.url]),
    )
    litewitness.add_log(ORIGIN, operator_vkey(rig.audit))
    lw = Verifier.parse(lw_key)

    rig.add(5)
    rig.checkpoint()
    assert rig.audit.request_cosignatures() == {litewitness.url: None}, litewitness.log_tail()
    first = rig.audit.checkpoints.latest()
    assert first is not None and valid_signatures(first, [lw])
    rig.add(6, tag="more")
    rig.checkpoint()
    assert rig.audit.request_cosignatures() == {litewitness.url: None}, litewitness.log_tail()
    second = rig.audit.checkpoints.latest()
    assert second is not None and second.text != first.text and valid_signatures(second, [lw])
    accepted = audit_verify(rig, "--witness-key", lw_key, "--require-witnesses", "1")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "witnessed by lw.example/w1" in accepted.stdout

    rig.rewrite_without(3)
    rig.add(4, tag="after")
    rig.checkpoint()
    note = rig.audit.checkpoints.latest()
    assert note is not None
    with pytest.raises(WitnessRefused) as refused:
        cosign_with(rig.audit.witnesses()[0], note, rig.audit.tree, rig.audit.checkpoints)
    assert refused.value.status == 422, refused.value  # the consistency proof fails
    again = rig.audit.checkpoints.latest()
    assert again is not None and not valid_signatures(again, [lw])
    refused_log = audit_verify(rig, "--witness-key", lw_key, "--require-witnesses", "1")
    assert refused_log.returncode == 1 and "not_witnessed" in refused_log.stdout
