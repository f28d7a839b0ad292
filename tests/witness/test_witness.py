"""The witness: cosigns a growing log, refuses a rewritten one and states the fork, signed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stream_processor.audit.merkle import leaf_hash, verify_inclusion
from stream_processor.audit.note import COSIGNATURE_V1, Note, Signer, Verifier, valid_signatures
from stream_processor.audit.tlog import TreeHead
from stream_processor.witness.decide import fork_statement_valid
from stream_processor.witness.service import Result
from tests.support.tlog import TlogRig

pytestmark = pytest.mark.unit


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


def served_checkpoint(rig: TlogRig) -> Note:
    return Note.parse(fetch(rig.url + "/audit/checkpoint"))


def witness_verifier(rig: TlogRig) -> Verifier:
    return Verifier.parse(rig.witness.vkey)


def test_witness_cosigns_each_checkpoint_that_extends_the_last(tlog_rig: TlogRig) -> None:
    rig = tlog_rig
    rig.add(5)
    rig.checkpoint()
    first = rig.witness.run_once()
    assert first.result == Result.COSIGNED and first.size == 5, first
    note = served_checkpoint(rig)
    assert valid_signatures(note, [witness_verifier(rig)]), "the log serves the cosignature"
    rig.add(7, tag="s")
    rig.checkpoint()
    second = rig.witness.run_once()
    assert second.result == Result.COSIGNED and second.size == 12, second
    assert "extends size 5" in second.reason
    assert rig.registry.get_sample_value("facegate_witness_cosigned_tree_size") == 12
    assert rig.registry.get_sample_value("facegate_witness_fork_detected") == 0
    # Nothing new: the same head is cosigned again, never a fork.
    assert rig.witness.run_once().result == Result.COSIGNED


def test_rewrite_attack_is_refused_and_a_signed_fork_statement_published(
    tlog_rig: TlogRig,
) -> None:
    rig = tlog_rig
    rig.add(6)
    rig.checkpoint()
    assert rig.witness.run_once().result == Result.COSIGNED
    cosigned = served_checkpoint(rig)
    # Drop entry 2, rebuild the chain, re-sign with the operator key, and grow past it.
    rig.rewrite_without(2)
    rig.add(3, tag="after")
    rig.checkpoint()
    out = rig.witness.run_once()
    assert out.result == Result.FORK, out
    assert "does not extend" in out.reason
    assert rig.registry.get_sample_value("facegate_witness_fork_detected") == 1
    rewritten = served_checkpoint(rig)
    assert not valid_signatures(rewritten, [witness_verifier(rig)]), "never cosigned"
    # The statement is signed by the witness and holds both operator-signed views.
    (statement,) = rig.witness_state.fork_statements()
    public = witness_verifier(rig).public
    assert fork_statement_valid(statement, public)
    doc = json.loads(statement)
    assert Note.parse(doc["cosigned_checkpoint"]).text == cosigned.text
    assert Note.parse(doc["offered_checkpoint"]).text == rewritten.text
    tampered = statement.replace('"reason":"', '"reason":"nothing happened; ')
    assert not fork_statement_valid(tampered, public)
    # Rounds that see the fork again keep refusing, without a pile of duplicates.
    assert rig.witness.run_once().result == Result.FORK
    assert len(rig.witness_state.fork_statements()) == 1


def test_same_size_other_root_and_rollback_are_forks(tlog_rig: TlogRig) -> None:
    rig = tlog_rig
    rig.add(4)
    rig.checkpoint()
    rig.witness.run_once()
    rig.rewrite_without(3)  # 3 entries now: a signed rollback
    assert rig.witness.run_once().result == Result.FORK
    rig.add(1, tag="same-size")  # 4 again, another root
    rig.checkpoint()
    out = rig.witness.run_once()
    assert out.result == Result.FORK and "two different roots" in out.reason


def test_checkpoint_signed_by_another_key_is_not_cosigned(tlog_rig: TlogRig) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from stream_processor.audit.tlog import TreeHead

    rig = tlog_rig
    rig.add(3)
    rig.checkpoint()
    forger = Signer(rig.audit.settings.log_id, Ed25519PrivateKey.generate())
    head = TreeHead.parse(served_checkpoint(rig).text)
    forged = Note(head.text(), (forger.sign(head.text()),))
    rig.audit.checkpoints._db.execute("DELETE FROM tree_checkpoints")
    rig.audit.checkpoints.add(forged)
    out = rig.witness.run_once()
    assert out.result == Result.UNTRUSTED
    assert rig.witness_state.head(rig.audit.settings.log_id) is None


def test_inclusion_proof_route_and_refused_cosignatures(tlog_rig: TlogRig) -> None:
    from urllib.error import HTTPError

    rig = tlog_rig
    rig.add(9)
    rig.checkpoint()
    head = TreeHead.parse(served_checkpoint(rig).text)
    line = rig.audit.paths.log.read_bytes().splitlines()[4]
    doc = json.loads(fetch(f"{rig.url}/audit/proof/inclusion?index=4&size={head.size}"))
    proof = [__import__("base64").b64decode(p) for p in doc["proof"]]
    assert verify_inclusion(leaf_hash(line), 4, head.size, proof, head.root)
    for bad in ("index=9&size=9", "index=-1&size=9", "index=0&size=99", "index=x&size=2"):
        with pytest.raises(HTTPError) as err:
            fetch(f"{rig.url}/audit/proof/inclusion?{bad}")
        assert err.value.code == 400, bad
    # A cosignature from a key the log does not accept is refused (403).
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from stream_processor.audit.note import COSIGNATURE_V1

    stranger = Signer("stranger.example/w", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    note = Note(head.text(), (stranger.sign(head.text()),))
    req = urllib.request.Request(rig.url + "/audit/cosignature", data=note.encode())
    with pytest.raises(HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403
    assert not valid_signatures(served_checkpoint(rig), [stranger.verifier])


def test_witness_http_face_serves_the_alarm_and_the_statement(tlog_rig: TlogRig) -> None:
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from stream_processor.witness.http import create_witness_app

    rig = tlog_rig
    rig.add(4)
    rig.checkpoint()
    rig.witness.run_once()
    rig.rewrite_without(1)
    rig.add(2, tag="x")
    rig.checkpoint()
    assert rig.witness.run_once().result == Result.FORK

    async def go() -> tuple[str, list[dict[str, object]], str, str]:
        app = create_witness_app(rig.witness, rig.registry, interval_s=3600)
        async with TestClient(TestServer(app)) as client:
            metrics = await (await client.get("/metrics")).text()
            statements = await (await client.get("/fork-statements")).json()
            key = await (await client.get("/public-key")).text()
            head = await (await client.get(f"/checkpoint/{rig.audit.settings.log_id}")).text()
            return metrics, statements, key, head

    metrics, statements, key, head = asyncio.run(go())
    assert "facegate_witness_fork_detected 1.0" in metrics
    assert 'facegate_witness_rounds_total{result="fork"}' in metrics
    assert len(statements) == 1 and statements[0]["origin"] == rig.audit.settings.log_id
    assert key.strip() == rig.witness.vkey
    assert TreeHead.parse(Note.parse(head).text).size == 4  # what it cosigned, kept


def test_hostile_log_cannot_flood_the_witness_nor_the_log_its_witness_keys(
    tlog_rig: TlogRig,
) -> None:
    from aiohttp import web

    from stream_processor.witness.client import HttpLogClient
    from stream_processor.witness.service import WitnessService
    from tests.support.tlog import Served

    async def flood(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (2 << 20))

    app = web.Application()
    app.router.add_get("/audit/checkpoint", flood)
    hostile = Served(app)
    try:
        witness = WitnessService(
            name="notary.example/w1",
            key=Ed25519PrivateKey.generate(),
            state=tlog_rig.witness_state,
            client=HttpLogClient(hostile.url, 10),
            log_keys=[],
        )
        out = witness.run_once()
    finally:
        hostile.close()
    assert out.result == Result.UNAVAILABLE and "over 1048576 bytes" in out.reason
    # A post with a pile of signature lines is refused before any is verified.
    rig = tlog_rig
    rig.add(2)
    rig.checkpoint()
    head = TreeHead.parse(served_checkpoint(rig).text)
    liar = Signer("w.example/x", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    note = Note(head.text(), tuple(liar.sign(head.text()) for _ in range(17)))
    req = urllib.request.Request(rig.url + "/audit/cosignature", data=note.encode())
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400
