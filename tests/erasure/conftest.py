"""Fixtures of the erasure tests: a whole pipeline on the real brokers (bridge, processor,
erasure worker) for one site, real edge agents, and helpers to look at every place a
subject's data could be."""

from __future__ import annotations

import copy
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from edge_agent.pseudonym import SiteSecret, load_site_secret
from edge_agent.wire.topics import DeviceIdentity
from tests.conftest import FACEGATE, Pipeline, prepare_bridge_session, wait_for
from tests.support.edge import AgentProcess, cli, write_config
from tests.support.processor import BASE_POLICY, TENANT, make_event

RESIDENT = "resident-obama-44"
OTHER = "resident-biden-46"


@dataclass
class Gate:
    """One gate device: its identity, folder (config, gallery, outbox, site secret)."""

    identity: DeviceIdentity
    folder: Path
    config: Path
    agents: list[AgentProcess] = field(default_factory=list)

    @property
    def outbox(self) -> Path:
        return self.folder / "outbox.sqlite"

    @property
    def secret(self) -> SiteSecret:
        return load_site_secret(self.folder / "site.secret")

    def start(self, name: str) -> AgentProcess:
        agent = AgentProcess(self.config, self.folder / f"{name}.log")
        self.agents.append(agent)
        wait_for(lambda: "listening for commands" in agent.text(), 90, f"{name} subscribed")
        return agent

    def gallery(self) -> str:
        return str(cli("edge", "gallery", "list", "--config", str(self.config)).stdout)

    def outbox_payloads(self) -> list[bytes]:
        if not self.outbox.exists():
            return []
        db = sqlite3.connect(f"file:{self.outbox}?mode=ro", uri=True, timeout=5)
        try:
            return [bytes(r[0]) for r in db.execute("SELECT payload FROM outbox")]
        finally:
            db.close()


class ErasureRig:
    """Drives one site's pipeline: CLI as a user runs it, events straight to Kafka."""

    def __init__(self, pipeline: Pipeline, models: Any) -> None:
        self.p = pipeline
        self.assets = models
        self.site = f"site-{pipeline.tag}"
        self.audit_dir = pipeline.tmp / "audit"
        self.rights_db = pipeline.tmp / "rights.sqlite"
        pipeline.extra_env.update(
            {
                "FACEGATE_STORE": "sqlite",
                "FACEGATE_TOPIC_ERASURE": f"t.{pipeline.tag}.erasure",
                "FACEGATE_AUDIT_DIR": str(self.audit_dir),
                "FACEGATE_ERASURE_DB_PATH": str(self.rights_db),
                "FACEGATE_ERASURE_TICK_S": "1",
                "FACEGATE_LOG_LEVEL": "INFO",
            }
        )
        from tests.support.kafka import create_topics

        # The pipeline's topics now include its own erasure topic (from extra_env).
        self.topics = pipeline.topics()
        self.bootstrap = pipeline.stack.settings().kafka_bootstrap
        create_topics(pipeline.stack, self.topics)
        pipeline.grant()
        self._producer: Any = None
        self.gates: list[Gate] = []
        self.erasure: subprocess.Popen[bytes] | None = None

    # -- set-up ---------------------------------------------------------------------
    def gate(self, name: str, gate: str = "gate-1", device: str = "cam-1") -> Gate:
        from stream_processor.runtime.devices import register_device
        from stream_processor.stack.mosquitto import Mosquitto

        ident = DeviceIdentity(TENANT, self.site, gate, device)
        connection = Path(
            register_device(
                self.p.stack.settings(), ident, broker=Mosquitto(self.p.stack.settings())
            )
        )
        folder = self.p.tmp / name
        folder.mkdir()
        config = write_config(folder, self.assets, connection)
        g = Gate(ident, folder, config)
        self.gates.append(g)
        return g

    def enroll(self, gate: Gate, resident: str, photo: str, card: str) -> None:
        cli("edge", "enroll", "--config", str(gate.config), "--resident-id", resident,
            "--photo", str(self.assets.photo(photo)), "--consent-ref", f"C-{resident}",
            "--adult", "--card", card)  # fmt: skip

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [FACEGATE, *args], env=self.p.env, capture_output=True, text=True, timeout=180
        )
        if check and result.returncode != 0:
            raise AssertionError(f"facegate {' '.join(args)}:\n{result.stdout}{result.stderr}")
        return result

    def apply_policy_and_consent(self, subjects: list[str]) -> None:
        import yaml

        from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy

        path = self.p.tmp / "policy.yaml"
        path.write_text(yaml.safe_dump(copy.deepcopy(BASE_POLICY)))
        self.cli("policy", "apply", str(path))
        now = int(time.time() * 1000)
        records = [
            ConsentRecord(
                tenant=TENANT,
                site=self.site,
                subject=s,
                purpose="access_control",
                status=ConsentStatus.GRANTED,
                given_by=GivenBy.SELF,
                evidence_ref=f"form-{i}",
                at_ms=now,
            )  # fmt: skip
            for i, s in enumerate(subjects)
        ]
        prod = self.producer()
        for r in records:
            prod.send(self.topics.consent, key=r.key, value=r.encode())
        prod.flush(30)

    def start_cloud(self) -> None:
        prepare_bridge_session(self.p)
        self.p.start("bridge", "run", name="bridge")
        self.p.start("processor", "worker", name="processor")
        self.erasure = self.p.start("erasure", "worker", name="erasure")

    def restart_erasure_worker(self) -> None:
        assert self.erasure is not None
        self.erasure.terminate()
        self.erasure.wait(60)
        self.erasure = self.p.start("erasure", "worker", name="erasure")

    # -- events -------------------------------------------------------------------------
    def producer(self) -> Any:
        if self._producer is None:
            from tests.support.kafka import producer

            self._producer = producer(self.p.stack, acks="all", linger_ms=5)
        return self._producer

    def send_events(self, subject: str, n: int, gate: Gate, start_seq: int = 0) -> list[str]:
        """Face matches and key-card events of ``subject`` straight to the raw topic."""
        from edge_agent.wire import encode_event

        ids = []
        prod = self.producer()
        now = int(time.time() * 1000)
        for i in range(n):
            kind = "face_match" if i % 2 == 0 else "key_card"
            event = make_event(
                kind, site=self.site, gate=gate.identity.gate, device=gate.identity.device,
                seq=start_seq + i, occurred_at_ms=now - 60_000 * i,
            )  # fmt: skip
            event = msgspec.structs.replace(event, subject=subject)
            ids.append(event.event_id)
            prod.send(self.topics.raw, key=f"{TENANT}/{self.site}".encode(),
                      value=encode_event(event))  # fmt: skip
        prod.flush(30)
        return ids

    # -- looking -----------------------------------------------------------------------------
    def store(self) -> Any:
        from stream_processor.store.sqlite import SqliteEventStore

        return SqliteEventStore(self.p.store_path)

    def stored_of(self, subject: str) -> int:
        store = self.store()
        try:
            return len(store.events_of_subject(TENANT, self.site, subject))
        finally:
            store.close()

    def aggregates_total(self) -> int:
        store = self.store()
        try:
            return sum(
                n for k, n in store.aggregates(TENANT, 0).items()
                if k.site == self.site and k.outcome == "stored"
            )  # fmt: skip
        finally:
            store.close()

    def consent_keys(self, subject: str) -> list[bytes]:
        from stream_processor.runtime.ledger_client import read_ledger
        from tests.support.kafka import login_kwargs

        ledger = read_ledger(self.bootstrap, self.topics.consent, auth=login_kwargs(self.p.stack))
        return [k for k in ledger if subject.encode() in k]

    def status(self, request_id: str) -> dict[str, Any]:
        """The erasure's status; ``absent`` until a worker has taken the request."""
        out = self.cli("erasure", "status", request_id, "--json", check=False)
        if out.returncode != 0:
            assert "not yet taken" in out.stderr, out.stderr
            return {"status": "absent", "stores_done": False}
        return dict(json.loads(out.stdout))

    def erasure_log(self) -> str:
        return self.p.log("erasure")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


def request(rig: ErasureRig, gate_secret: str, *extra: str) -> str:
    out = rig.cli(
        "erasure", "request", "--tenant", "acme", "--site", rig.site,
        "--resident-id", RESIDENT, "--site-secret", gate_secret, "--channel", "office", *extra,
        check=False,
    )  # fmt: skip
    assert out.returncode in (0, 3), out.stdout + out.stderr
    return out.stdout.strip().splitlines()[0]


def verify_receipt(rig: ErasureRig, request_id: str) -> dict:  # type: ignore[type-arg]
    path = rig.p.tmp / f"{request_id}.json"
    rig.cli("erasure", "receipt", request_id, "--out", str(path))
    verdict = rig.cli("audit", "verify", "--receipt", str(path), check=False)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    return dict(json.loads(path.read_text()))


@pytest.fixture
def rig(pipeline: Pipeline, assets: Any) -> Iterator[ErasureRig]:  # noqa: F811 - fixture
    r = ErasureRig(pipeline, assets)
    try:
        yield r
    finally:
        for g in r.gates:
            for a in g.agents:
                if a.proc.poll() is None:
                    a.proc.kill()
                    a.proc.wait(30)
        r.close()
        pipeline.stop_all()
