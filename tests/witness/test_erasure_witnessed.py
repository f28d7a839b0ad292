"""The erasure flow hands out a witnessed receipt at once when a push witness is configured,
and a plain one (witnessed later) when the witness is down."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from types import ModuleType

import pytest

from stream_processor.audit.note import Verifier
from stream_processor.audit.settings import AuditSettings
from stream_processor.audit.wiring import open_audit
from stream_processor.erasure.audit import ErasureAudit
from stream_processor.rights.db import open_rights_db
from stream_processor.rights.receipt_proof import check_witnessed, witness_now
from stream_processor.rights.receipt_store import ReceiptStore
from tests.conftest import REPO, free_ports
from tests.support.audit import make_claims, uuid7
from tests.support.tlog import operator_vkey

pytestmark = pytest.mark.unit


def reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "reference_witness", REPO / "docs" / "verifier" / "reference_witness.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_completed_erasure_is_witnessed_at_once_or_later(tmp_path: Path) -> None:
    ref = reference()
    key = ref.load_key(tmp_path / "w.pem")
    probe = ref.Witness("notary.example/w1", key, tmp_path / "w.json", [])
    port = free_ports(1)[0]
    settings = AuditSettings(
        log_id="acme.example",
        witness_keys=[probe.vkey()],
        witness_urls=[f"http://127.0.0.1:{port}"],
        witness_timeout_s=2,
    )
    audit = open_audit(tmp_path / "state", settings)
    db = open_rights_db(tmp_path / "rights.sqlite")
    receipts = ReceiptStore(db)
    ea = ErasureAudit(
        audit.log, audit.key, "acme.example", audit.openings, receipts,
        audit.checkpointer(None), witness_now(audit),
    )  # fmt: skip
    try:
        # The witness is down: the receipt is issued all the same, without a proof.
        down = ea.completed(make_claims(uuid7()))
        assert down.witnessed is None
        witness = ref.Witness("notary.example/w1", key, tmp_path / "w.json", [operator_vkey(audit)])
        server = ref.serve(witness, "127.0.0.1", port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            up = ea.completed(make_claims(uuid7()))
            # Nothing new since: the witness that cosigned this size is not asked again.
            assert audit.request_cosignatures() == {}
        finally:
            server.shutdown()
            server.server_close()
        assert up.witnessed is not None
        w = [Verifier.parse(witness.vkey())]
        assert check_witnessed(up, audit.key.public, w).ok
        assert receipts.get(up.claims.request_id) == up
        assert ea.completed(up.claims) == up  # a redelivery hands out the same receipt
        assert [r.claims.request_id for r in receipts.unwitnessed()] == [down.claims.request_id]
    finally:
        db.close()
        audit.close()
