"""Witness fixtures: an operator's audit log (production wiring) served over real HTTP on
loopback, a witness with its own state, and the rewrite attack an operator with
every key can mount."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from stream_processor.audit import record
from stream_processor.audit.entries import build_entry, decode_entry
from stream_processor.audit.settings import AuditSettings
from stream_processor.audit.wiring import Audit, open_audit
from stream_processor.witness.client import HttpLogClient
from stream_processor.witness.service import WitnessMetrics, WitnessService
from stream_processor.witness.state import WitnessState, load_or_create_key
from tests.support.audit import Clock, pseudonym_of

ORIGIN = "acme.example"
WITNESS = "notary.example/w1"


class Served:
    """An aiohttp app on a free loopback port, in a thread of its own."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.runner = web.AppRunner(app)

        async def start() -> int:
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def audit_app(audit: Audit, witness_keys: list[str]) -> web.Application:
    """The web app's /audit/ routes alone (no cameras, no rights DB: not needed here)."""
    from stream_processor.web import audit as audit_routes
    from stream_processor.web.deps import DEPS

    app = web.Application()
    app[DEPS] = SimpleNamespace(audit_paths=audit.paths)  # type: ignore[assignment]
    audit_routes.add_routes(app, witness_keys=witness_keys)
    return app


@dataclass
class TlogRig:
    state: Path
    audit: Audit
    witness: WitnessService
    witness_state: WitnessState
    registry: CollectorRegistry
    server: Served
    clock: Clock

    @property
    def url(self) -> str:
        return self.server.url

    def add(self, n: int, tag: str = "r") -> None:
        for i in range(n):
            record.consent_changed(
                self.audit.log,
                tenant="acme",
                site="north",
                subject=pseudonym_of(f"{tag}-{i}"),
                purpose="access_control",
                granted=True,
                by_guardian=False,
                evidence_ref=f"form-{tag}-{i}",
            )
            self.clock.advance(1)

    def checkpoint(self) -> None:
        self.audit.checkpointer(None).checkpoint()

    def reopen(self) -> None:
        """Restart the operator's processes (they read the key and files again)."""
        self.audit.close()
        self.audit = open_audit(self.state, self.audit.settings)

    def rewrite_without(self, seq: int) -> None:
        """The attack: drop entry ``seq``, rebuild the chain, wipe the derived tree and
        every checkpoint, and re-sign the head with the operator's own key."""
        lines = self.audit.paths.log.read_bytes().splitlines()
        kept = [decode_entry(x) for i, x in enumerate(lines) if i != seq]
        out: list[bytes] = []
        prev = "0" * 64
        for n, e in enumerate(kept):
            new = build_entry(
                seq=n,
                at_ms=e.at_ms,
                type=e.type,
                tenant=e.tenant,
                site=e.site,
                subject=e.subject,
                body=e.body,
                prev=prev,
            )
            out.append(new.line() + b"\n")
            prev = new.hash
        self.audit.paths.log.write_bytes(b"".join(out))
        shutil.rmtree(self.audit.paths.tree)
        self.audit.paths.checkpoints.unlink()
        db = self.audit.checkpoints._db
        for table in ("tree_checkpoints", "cosignatures", "witness_heads"):
            db.execute(f"DELETE FROM {table}")
        self.reopen()
        self.checkpoint()


def audit_verify(rig: TlogRig, *args: str) -> subprocess.CompletedProcess[str]:
    """``facegate audit verify`` over the rig's state, the way a user runs it."""
    from tests.conftest import FACEGATE

    env = {**os.environ, "FACEGATE_STATE_DIR": str(rig.state)}
    return subprocess.run(
        [FACEGATE, "audit", "verify", *args], env=env, capture_output=True, text=True, timeout=120
    )


def operator_vkey(audit: Audit) -> str:
    from stream_processor.audit.tlog import operator_signer

    return operator_signer(audit.key, audit.settings.log_id).verifier.vkey()


@pytest.fixture
def tlog_rig(tmp_path: Path) -> Iterator[TlogRig]:
    from stream_processor.audit.note import COSIGNATURE_V1, Signer, Verifier

    clock = Clock()
    witness_dir = tmp_path / "witness"
    witness_key = load_or_create_key(witness_dir)
    witness_vkey = Signer(WITNESS, witness_key, COSIGNATURE_V1).verifier.vkey()
    state = tmp_path / "operator"
    audit = open_audit(state, AuditSettings(log_id=ORIGIN, witness_keys=[witness_vkey]))
    audit.log._clock = clock
    server = Served(audit_app(audit, [witness_vkey]))
    registry = CollectorRegistry()
    wstate = WitnessState(witness_dir / "witness.sqlite")
    service = WitnessService(
        name=WITNESS,
        key=witness_key,
        state=wstate,
        client=HttpLogClient(server.url, 10),
        log_keys=[Verifier.parse(operator_vkey(audit))],
        metrics=WitnessMetrics(registry),
        clock=clock,
    )
    rig = TlogRig(state, audit, service, wstate, registry, server, clock)
    try:
        yield rig
    finally:
        server.close()
        wstate.close()
        rig.audit.close()
