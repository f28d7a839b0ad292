"""Two hosts, one audit chain: two sets of processes with separate state directories
share the brokers (``FACEGATE_AUDIT_MODE=topic``). Each host runs an audit writer and a
process that appends audit entries; host A's active writer and its appending process
are killed with SIGKILL mid-stream. Every acknowledged entry is in the chain once, the
standby writer takes over, and both hosts' ``facegate audit verify`` accept the same
chain, byte for byte (no fork)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from edge_agent.pseudonym import pseudonym
from stream_processor.audit.entries import decode_entry
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics
from tests.conftest import FACEGATE, StackHandle, wait_for
from tests.erasure.conftest import OTHER, RESIDENT, ErasureRig, rig  # noqa: F401 - fixture
from tests.support.kafka import create_topics, private_host, revoke_private

pytestmark = pytest.mark.e2e

#: A process of a host that appends audit entries as the erasure worker and web app do
#: (open_audit in topic mode); it prints each entry once the chain acknowledged it.
APPENDER = """
import json, sys
from stream_processor.audit import record
from stream_processor.audit.wiring import open_audit
from stream_processor.runtime.settings import BrokerSettings
a = open_audit(BrokerSettings().state_dir)
host, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    e = record.retention_sweep(a.log, tenant="acme", site=host, deleted={"face_match": i},
                               cutoff_ms=i, policy_version=1).entry
    print(json.dumps([host, i, e.seq, e.hash]), flush=True)
a.close()
"""

#: What the erasure worker does at the start and end of an erasure, on the audit side:
#: the request entry, then the completion entry and the signed receipt (its anchor and
#: the opening of the earlier entry, both from this host's private openings).
RECEIPT = """
import sys
from pathlib import Path
from stream_processor.audit import record
from stream_processor.audit.wiring import open_audit
from stream_processor.rights.receipts import issue_receipt
from stream_processor.runtime.settings import BrokerSettings
from tests.support.audit import make_claims, uuid7
a = open_audit(BrokerSettings().state_dir)
claims = make_claims(uuid7())
record.erasure_requested(a.log, request_id=claims.request_id, tenant=claims.tenant,
                         site=claims.site, subject=claims.subject, purposes=None, channel="office")
receipt = issue_receipt(claims, sink=a.log, key=a.key, log_id=a.settings.log_id,
                        openings=a.openings)
Path(sys.argv[1]).write_text(receipt.to_json())
a.close()
"""


@dataclass
class Host:
    name: str
    state: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    files: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        out = open(self.state / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop_all
        self.files.append(out)
        proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.state / f"{name}.log").read_text(errors="replace")

    def acknowledged(self, name: str) -> list[tuple[str, int, int, str]]:
        acked = []
        for line in self.log(name).splitlines():
            if line.startswith("["):
                site, i, seq, digest = json.loads(line)
                acked.append((str(site), int(i), int(seq), str(digest)))
        return acked

    def writer_active(self, name: str) -> bool:
        events = [x for x in self.log(name).splitlines() if "audit chain writer:" in x]
        return bool(events) and "took over" in events[-1]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FACEGATE, *args], env=self.env, capture_output=True, text=True,
                              timeout=120)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for f in self.files:
            f.close()


@pytest.fixture
def hosts(running_stack: StackHandle, tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    tag = uuid.uuid4().hex[:10]
    topics = Topics(audit_facts=f"t.{tag}.audit.facts", audit_chain=f"t.{tag}.audit.chain")
    create_topics(running_stack, topics, {topics.audit_facts, topics.audit_chain})
    shared = {
        **os.environ, **running_stack.env,
        "FACEGATE_AUDIT_MODE": "topic",
        "FACEGATE_AUDIT_CHAIN_WAIT_S": "60",
        "FACEGATE_AUDIT_WRITER_GROUP": f"facegate-audit-writer-{tag}",
        "FACEGATE_TOPIC_AUDIT_FACTS": topics.audit_facts,
        "FACEGATE_TOPIC_AUDIT_CHAIN": topics.audit_chain,
    }  # fmt: skip
    made = []
    for name in ("a", "b"):
        state = tmp_path / f"host-{name}"
        state.mkdir()
        made.append(Host(name, state, {**shared, "FACEGATE_STATE_DIR": str(state)}))
    a, b = made
    # Each host logs in as the roles it runs (the writer's, the appenders'), with the
    # production plan on the test's audit topics.
    grants = private_host(running_stack, a.state, topics, Role.AUDIT, Role.OFFICE)
    # The operator key is the deployment's, not a host's: host B is given host A's
    # (and the same logins, which live beside it).
    subprocess.run([FACEGATE, "audit", "public-key"], env=a.env, check=True,
                   capture_output=True, timeout=120)
    shutil.copytree(a.state / "secrets", b.state / "secrets")
    try:
        yield a, b
    finally:
        a.stop_all()
        b.stop_all()
        revoke_private(running_stack, grants)


def _appender(host: Host, name: str, n: int, site: str) -> subprocess.Popen[bytes]:
    return host.start(name, sys.executable, "-c", APPENDER, site, str(n))


def test_one_chain_across_two_hosts_survives_a_killed_writer_and_appender(
    hosts: tuple[Host, Host],
) -> None:
    a, b = hosts
    a.start("writer", FACEGATE, "audit", "writer")
    wait_for(lambda: a.writer_active("writer"), 60, "host A's writer takes partition 0")
    b.start("writer", FACEGATE, "audit", "writer")
    a_app = _appender(a, "app", 100_000, "a")
    b_app = _appender(b, "app", 60, "b")
    wait_for(lambda: len(a.acknowledged("app")) >= 15 and len(b.acknowledged("app")) >= 10,
             90, "both hosts append")
    # Whichever writer holds partition 0 now is killed, with host A's appender.
    active = a if a.writer_active("writer") else b
    standby = b if active is a else a
    assert active.writer_active("writer") and not standby.writer_active("writer")
    active.procs["writer"].send_signal(signal.SIGKILL)
    a_app.send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    b_app.wait(120)
    assert b_app.returncode == 0, b.log("app")
    took = time.monotonic() - t0
    assert standby.writer_active("writer"), standby.log("writer")
    # Host A comes back: its next appends land on the same chain.
    a_again = _appender(a, "app-again", 5, "a-again")
    a_again.wait(120)
    assert a_again.returncode == 0, a.log("app-again")

    # An erasure finished on host A: its receipt verifies on host B against the one chain.
    receipt = a.state / "receipt.json"
    done = subprocess.run([sys.executable, "-c", RECEIPT, str(receipt)], env=a.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    on_b = b.cli("audit", "verify", "--receipt", str(receipt))
    assert on_b.returncode == 0, on_b.stdout + on_b.stderr

    acked = a.acknowledged("app") + b.acknowledged("app") + a.acknowledged("app-again")
    verdicts = [h.cli("audit", "verify", "--json") for h in (a, b)]
    for v in verdicts:
        assert v.returncode == 0, v.stdout + v.stderr
    copies = [(h.state / "audit" / "log.jsonl").read_bytes() for h in (a, b)]
    assert copies[0] == copies[1]  # one chain, the same head on both hosts
    chain = [decode_entry(line) for line in copies[0].splitlines()]
    assert [e.seq for e in chain] == list(range(len(chain)))
    by_seq = {e.seq: e for e in chain}
    for host, i, seq, digest in acked:  # every acknowledged entry, in its place
        entry = by_seq[seq]
        assert entry.hash == digest and entry.site == host and entry.body["cutoff_ms"] == i
    assert [e.type for e in chain[-2:]] == ["erasure_requested", "erasure_completed"]
    mine = [(e.site, e.body["cutoff_ms"]) for e in chain if e.type == "retention_sweep"]
    assert len(mine) == len(set(mine)), "a fact chained twice"
    assert took < 60, f"the standby took {took:.1f} s to take over"


def _http_get(port: int, path: str) -> bytes | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return bytes(r.read())
    except OSError:
        return None


def test_two_hosts_erasure_completes_with_a_verifiable_receipt_after_one_host_dies(
    rig: ErasureRig, pg_cluster: object, tmp_path: Path,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Host A (the stack's state dir) runs the bridge, processor, erasure worker, web app
    and audit writer; host B (a state dir of its own) its erasure worker, web app and
    audit writer. The rights database is one PostgreSQL database. Host A's erasure
    worker and web app are killed with SIGKILL mid-erasure: host B's worker finishes it."""
    from tests.conftest import free_ports
    from tests.support.store import new_pg_database

    tag = rig.p.tag
    topics = Topics(audit_facts=f"t.{tag}.audit.facts", audit_chain=f"t.{tag}.audit.chain")
    create_topics(rig.p.stack, topics, {topics.audit_facts, topics.audit_chain})
    web_a, web_b = free_ports(2)
    dsn = new_pg_database(pg_cluster)
    # The gate is registered from this process: on the shared registry, so that every
    # host's erasure worker waits for its acknowledgement.
    monkeypatch.setenv("FACEGATE_RIGHTS_DSN", dsn)
    rig.p.extra_env.update({
        "FACEGATE_RIGHTS_DSN": dsn,
        "FACEGATE_AUDIT_MODE": "topic",
        "FACEGATE_AUDIT_CHAIN_WAIT_S": "60",
        "FACEGATE_AUDIT_WRITER_GROUP": f"facegate-audit-writer-{tag}",
        "FACEGATE_TOPIC_AUDIT_FACTS": topics.audit_facts,
        "FACEGATE_TOPIC_AUDIT_CHAIN": topics.audit_chain,
        "FACEGATE_WEB_TLS": "false",
    })  # fmt: skip
    rig.p.grant()  # the roles' plan on the test's audit topics too
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    rig.enroll(gate, OTHER, "biden.jpg", "CARD-BIDEN-1")
    subject, other = pseudonym(gate.secret, RESIDENT), pseudonym(gate.secret, OTHER)
    rig.p.start("audit", "writer", name="writer-a")
    rig.apply_policy_and_consent([subject, other])
    rig.start_cloud()
    web_proc_a = rig.p.start("web", "serve", "--port", str(web_a), name="web-a")
    state_a = Path(rig.p.env["FACEGATE_STATE_DIR"])
    key = state_a / "secrets" / "audit-ed25519.pem"
    wait_for(key.exists, 60, "host A's operator key")
    # Host B: its own state dir, given the deployment's secrets (the operator key).
    state_b = tmp_path / "host-b"
    shutil.copytree(state_a / "secrets", state_b / "secrets")
    env_b = {**rig.p.env, "FACEGATE_STATE_DIR": str(state_b),
             "FACEGATE_AUDIT_DIR": str(state_b / "audit")}  # fmt: skip
    b = Host("b", state_b, env_b)
    try:
        b.start("writer", FACEGATE, "audit", "writer")
        b.start("erasure", FACEGATE, "erasure", "worker")
        b.start("web", FACEGATE, "web", "serve", "--port", str(web_b))
        _erase_across_hosts(rig, b, gate, subject, other, web_proc_a, web_b)
    finally:
        b.stop_all()


def _erase_across_hosts(
    a: ErasureRig, b: Host, gate: Any, subject: str, other: str,
    web_a: subprocess.Popen[bytes], web_b: int,
) -> None:  # fmt: skip
    assert gate.start("agent1").stop() == 0  # offline: the erasure waits for its ack
    mine = a.send_events(subject, 200, gate)
    a.send_events(other, 50, gate, start_seq=1000)
    wait_for(lambda: a.stored_of(subject) == len(mine), 120, "stored")
    out = a.cli("erasure", "request", "--tenant", "acme", "--site", a.site,
                  "--resident-id", RESIDENT, "--site-secret", str(gate.folder / "site.secret"),
                  "--channel", "office", "--wait", "0", check=False)  # fmt: skip
    assert out.returncode in (0, 3), out.stdout + out.stderr
    request_id = out.stdout.strip().splitlines()[0]
    wait_for(lambda: a.status(request_id)["stores_done"], 120, "stores done on host A")
    assert a.status(request_id)["devices_pending"] == ["gate-1/cam-1"]
    assert a.erasure is not None
    for proc in (a.erasure, web_a):  # host A's erasure worker and web app
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    gate.start("agent2")
    wait_for(lambda: a.status(request_id)["status"] == "complete", 180,
             "complete on host B")  # fmt: skip
    receipt = a.p.tmp / "receipt.json"
    a.cli("erasure", "receipt", request_id, "--out", str(receipt))
    for env in (a.p.env, b.env):  # each host verifies the receipt against its copy
        verdict = subprocess.run([FACEGATE, "audit", "verify", "--receipt", str(receipt)],
                                 env=env, capture_output=True, text=True, timeout=120)
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    assert a.stored_of(subject) == 0 and a.stored_of(other) == 50
    copy_a = (a.audit_dir / "log.jsonl").read_bytes()
    copy_b = (b.state / "audit" / "log.jsonl").read_bytes()
    assert copy_a == copy_b and copy_a.count(b"erasure_completed") == 1
    # Host B's web app publishes the same chain.
    wait_for(lambda: _http_get(web_b, "/audit/log.jsonl") == copy_a, 30, "B's web")


def test_an_erasure_waits_for_the_audit_writer_and_never_completes_half(
    rig: ErasureRig, pg_cluster: object, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    """With no chaining writer at the moment an erasure completes, the completion's audit
    entry cannot be chained: every step is done but no receipt is issued (an outage the
    worker retries), and once a writer runs, one verifiable receipt is issued and the
    chain holds exactly one completion entry for it, however often the worker retried."""
    from tests.support.store import new_pg_database

    tag = rig.p.tag
    topics = Topics(audit_facts=f"t.{tag}.audit.facts", audit_chain=f"t.{tag}.audit.chain")
    create_topics(rig.p.stack, topics, {topics.audit_facts, topics.audit_chain})
    dsn = new_pg_database(pg_cluster)
    # The gate is registered from this process: on the shared registry, so that every
    # host's erasure worker waits for its acknowledgement.
    monkeypatch.setenv("FACEGATE_RIGHTS_DSN", dsn)
    rig.p.extra_env.update({
        "FACEGATE_RIGHTS_DSN": dsn,
        "FACEGATE_AUDIT_MODE": "topic",
        "FACEGATE_AUDIT_CHAIN_WAIT_S": "3",
        "FACEGATE_AUDIT_WRITER_GROUP": f"facegate-audit-writer-{tag}",
        "FACEGATE_TOPIC_AUDIT_FACTS": topics.audit_facts,
        "FACEGATE_TOPIC_AUDIT_CHAIN": topics.audit_chain,
    })  # fmt: skip
    rig.p.grant()  # the roles' plan on the test's audit topics too
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    subject = pseudonym(gate.secret, RESIDENT)
    writer = rig.p.start("audit", "writer", name="writer")
    rig.apply_policy_and_consent([subject])
    rig.start_cloud()
    assert gate.start("agent1").stop() == 0  # offline: the erasure waits for its ack
    mine = rig.send_events(subject, 50, gate)
    wait_for(lambda: rig.stored_of(subject) == len(mine), 120, "stored")
    out = rig.cli("erasure", "request", "--tenant", "acme", "--site", rig.site,
                  "--resident-id", RESIDENT, "--site-secret", str(gate.folder / "site.secret"),
                  "--channel", "office", "--wait", "0", check=False)  # fmt: skip
    assert out.returncode in (0, 3), out.stdout + out.stderr
    request_id = out.stdout.strip().splitlines()[0]
    wait_for(lambda: rig.status(request_id)["stores_done"], 120, "stores done")
    assert rig.status(request_id)["devices_pending"] == ["gate-1/cam-1"]
    writer.send_signal(signal.SIGKILL)  # no writer left anywhere
    writer.wait(30)
    gate.start("agent2")  # the gate acknowledges: only the completion entry is missing
    wait_for(lambda: "ChainUnavailable" in rig.erasure_log() or "not chained" in
             rig.erasure_log(), 120, "the worker meets the outage")  # fmt: skip
    time.sleep(3)
    # Every step is done, but without its chained entry there is no receipt.
    assert rig.status(request_id)["status"] == "complete"
    assert rig.status(request_id)["receipt"] is False
    assert rig.cli("erasure", "receipt", request_id, check=False).returncode != 0
    assert b"erasure_completed" not in (rig.audit_dir / "log.jsonl").read_bytes()
    rig.p.start("audit", "writer", name="writer-again")
    wait_for(lambda: rig.status(request_id)["receipt"] is True, 180, "receipt issued")
    receipt = rig.p.tmp / "receipt.json"
    rig.cli("erasure", "receipt", request_id, "--out", str(receipt))
    verdict = rig.cli("audit", "verify", "--receipt", str(receipt), check=False)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    # Exactly one erasure_completed entry, the receipt's anchor: the worker's attempts
    # that timed out published the same once-only fact (pinned claims and salt), which
    # the writer chained once when it ran.
    anchor = json.loads(receipt.read_text())["audit"]
    chain = [decode_entry(x) for x in (rig.audit_dir / "log.jsonl").read_bytes().splitlines()]
    done = [e for e in chain if e.type == "erasure_completed"]
    assert [e.seq for e in done] == [anchor["seq"]]
    assert done[0].body["request_id"] == request_id

