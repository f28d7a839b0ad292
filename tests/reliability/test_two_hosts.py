"""Two hosts: sets of processes with separate state directories (standing in for two
hosts) sharing the brokers and PostgreSQL (``FACEGATE_AUDIT_MODE=topic``).

- One audit chain: each host runs an audit writer and a process that appends audit
  entries; host A's active writer and its appender are killed with SIGKILL mid-stream.
  Every acknowledged entry is in the chain once, the standby writer takes over, and
  both hosts' ``facegate audit verify`` accept the same chain, byte for byte.
- Two complete hosts (bridge, processor worker, erasure worker, web app, audit writer
  each) on one event store and rights DB, simulated gates publishing through both
  bridges: host A's erasure worker, web app and processor worker are killed mid-erasure;
  host B finishes it with a receipt both hosts verify, and every gate event is stored
  once but the erased resident's.
- No writer at the moment an erasure completes: no receipt until one runs, then one.

A failure prints every host's log tails (with the Faust workers' stacks)."""

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
from pathlib import Path
from typing import Any

import pytest

from edge_agent.pseudonym import pseudonym
from stream_processor.audit.entries import decode_entry
from stream_processor.audit.keys import Keyring
from stream_processor.audit.verify import verify_log
from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.settings import Topics
from tests.conftest import FACEGATE, StackHandle, wait_for
from tests.erasure.conftest import OTHER, RESIDENT, ErasureRig, rig  # noqa: F401 - fixture
from tests.support.deployment import (
    Deployment,
    deploy,
    http_get,
    start_hosts,
    wait_for_processors,
)
from tests.support.hosts import (
    Host,
    SimulatedGates,
    sim_accounts,
    stored_of,
    stored_per_device,
    tails_on_failure,
)
from tests.support.kafka import create_topics, private_host, revoke_private
from tests.support.processor import TENANT

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


@pytest.fixture
def hosts(running_stack: StackHandle, tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    tag = uuid.uuid4().hex[:10]
    # The test's own checkpoint topic too: in topic mode verify reads the shared one,
    # and the suite's default topic holds other tests' checkpoints under other keys.
    topics = Topics(audit_facts=f"t.{tag}.audit.facts", audit_chain=f"t.{tag}.audit.chain",
                    audit_checkpoints=f"t.{tag}.audit.checkpoints")  # fmt: skip
    create_topics(running_stack, topics,
                  {topics.audit_facts, topics.audit_chain, topics.audit_checkpoints})
    shared = {
        **os.environ, **running_stack.env,
        "FACEGATE_AUDIT_MODE": "topic",
        "FACEGATE_AUDIT_CHAIN_WAIT_S": "60",
        "FACEGATE_AUDIT_WRITER_GROUP": f"facegate-audit-writer-{tag}",
        "FACEGATE_TOPIC_AUDIT_FACTS": topics.audit_facts,
        "FACEGATE_TOPIC_AUDIT_CHAIN": topics.audit_chain,
        "FACEGATE_TOPIC_AUDIT_CHECKPOINTS": topics.audit_checkpoints,
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
    with tails_on_failure(hosts):
        _one_chain_with_a_killed_writer(*hosts)


def _one_chain_with_a_killed_writer(a: Host, b: Host) -> None:
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


def test_two_complete_hosts_finish_an_erasure_while_gates_publish_and_one_host_dies(
    rig: ErasureRig, pg_cluster: object, tmp_path: Path,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Host A (the stack's state dir) and host B (one of its own) each run an audit
    writer, a bridge, a processor worker, an erasure worker and a web app, on one
    PostgreSQL event store and rights DB. Simulated gates publish through both bridges
    meanwhile. Host A's erasure worker and web app are killed with SIGKILL mid-erasure:
    host B's worker finishes it, its receipt verifies on both hosts against one chain,
    and every gate event is stored once, but the erased resident's."""
    d = deploy(rig, pg_cluster, tmp_path, monkeypatch)
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    rig.enroll(gate, OTHER, "biden.jpg", "CARD-BIDEN-1")
    subjects = [pseudonym(gate.secret, r) for r in (RESIDENT, OTHER)]
    try:
        with tails_on_failure(d.hosts, d.extra_logs()):
            rig.apply_policy_and_consent(subjects)
            accounts = sim_accounts(rig.p.stack.settings(), rig.topics, d.sims, 2,
                                    rig.p.tmp / "edge")  # fmt: skip
            start_hosts(d)
            _erase_across_hosts(d, gate, accounts, *subjects)
    finally:
        d.b.stop_all()
        d.a.stop_all()


def _erase_across_hosts(d: Deployment, gate: Any, accounts: list[Any], subject: str,
                        other: str) -> None:  # fmt: skip
    er, (a, b) = d.rig, d.hosts
    assert gate.start("agent1").stop() == 0  # offline: the erasure waits for its ack
    mine = er.send_events(subject, 200, gate)
    er.send_events(other, 50, gate, start_seq=1000)
    wait_for(lambda: stored_of(d.events_dsn, TENANT, er.site, subject)[0] == len(mine), 120,
             "the resident's events stored")  # fmt: skip
    with SimulatedGates(accounts, d.rig.p.tmp / "sim.log") as sim:
        request_id = _request(er, gate)
        # Each poll is a facegate command (a second of CPU): not five a second.
        wait_for(lambda: er.status(request_id)["stores_done"], 120, "stores done", 1.0)
        assert er.status(request_id)["devices_pending"] == ["gate-1/cam-1"]
        _both_webs_serve_what_a_signed(d)
        # Host A's erasure worker and web app, mid-erasure, and its processor worker
        # while the gates publish: host B's takes its raw partitions.
        a.kill9("erasure", "web", "processor")
        gate.start("agent2")
        wait_for(lambda: _status(b, request_id)["receipt"] is True, 180,
                 "complete with a receipt, on host B", 1.0)  # fmt: skip
        wait_for_processors(d, 1, "host B's processor alone in the group")
    report = sim.report()
    assert _status(b, request_id)["status"] == "complete"
    # Driven by host B: its worker counts the completion, host A's was dead before the
    # gate acknowledged and is still.
    completed = http_get(d.erasure_metrics_b, "/metrics") or b""
    assert b"\nfacegate_erasure_completed_total 1.0\n" in completed, completed.decode()
    assert a.procs["erasure"].returncode == -signal.SIGKILL
    for name in ("bridge", "writer"):  # host A's others kept running
        assert a.procs[name].poll() is None, a.log(name)
    _check_receipt_and_chain(d, request_id)
    _check_stored_once(d, report, subject, other)
    # Nothing of the rights or the events was kept in a file of one host's, and no
    # host made secrets of its own (one command-id key names the commands alike).
    for path in (b.state / "rights", b.state / "store", er.rights_db, er.p.store_path):
        assert not path.exists(), path
    for secret in ("command-id.key", "audit-ed25519.pem"):
        assert (a.state / "secrets" / secret).read_bytes() == (
            b.state / "secrets" / secret
        ).read_bytes(), secret


def _both_webs_serve_what_a_signed(d: Deployment) -> None:
    """A checkpoint host A signs is served by host B's web app as by A's: both serve
    the shared checkpoint topic, not their own host's file."""
    a = d.hosts[0]
    signed = a.cli("audit", "checkpoint", "--publish", "--force")
    assert signed.returncode == 0, signed.stdout + signed.stderr
    mine = (d.rig.audit_dir / "checkpoints.jsonl").read_bytes().splitlines(True)[-1]

    def same() -> bool:
        served = [http_get(port, "/audit/checkpoints.jsonl") for port in d.webs]
        return served[0] is not None and served[0] == served[1] and mine in served[0]

    wait_for(same, 30, "both web apps serve host A's checkpoint")


def _request(er: ErasureRig, gate: Any) -> str:
    out = er.cli("erasure", "request", "--tenant", "acme", "--site", er.site,
                  "--resident-id", RESIDENT, "--site-secret", str(gate.folder / "site.secret"),
                  "--channel", "office", "--wait", "0", check=False)  # fmt: skip
    assert out.returncode in (0, 3), out.stdout + out.stderr
    return out.stdout.strip().splitlines()[0]


def _status(host: Host, request_id: str) -> dict[str, Any]:
    out = host.cli("erasure", "status", request_id, "--json")
    if out.returncode != 0:
        assert "not yet taken" in out.stderr, out.stderr
        return {"status": "absent", "receipt": False}
    return dict(json.loads(out.stdout))


def _verdict(host: Any, receipt: Path) -> dict[str, Any]:
    verdict = host.cli("audit", "verify", "--json", "--receipt", str(receipt))
    assert verdict.returncode == 0, f"host {host.name}: {verdict.stdout}{verdict.stderr}"
    report = json.loads(verdict.stdout)
    keys = ("ok", "entries", "anchors_checked", "findings", "checkpoints",
            "last_checkpoint_seq")  # fmt: skip
    return {k: report[k] for k in keys}


def _check_receipt_and_chain(d: Deployment, request_id: str) -> None:
    """The receipt (fetched on host B) verifies on both hosts, whose copies of the chain
    are one chain byte for byte, with exactly one completion entry for the request."""
    a, b = d.hosts
    receipt = b.state / "receipt.json"
    fetched = b.cli("erasure", "receipt", request_id, "--out", str(receipt))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    # The chain, the receipt's anchor, the verdict and the checkpoints (read from the
    # shared topic, whichever host signed them) are the deployment's. A checkpoint signed
    # between the two reads is a later state, not a second chain: read both again.
    reports: list[dict[str, Any]] = []

    def agree() -> bool:
        reports[:] = [_verdict(host, receipt) for host in (a, b)]
        return reports[0] == reports[1]

    wait_for(agree, 60, "both hosts' verify agreeing", interval_s=2, seen=lambda: reports)
    assert reports[0]["ok"] and reports[0]["anchors_checked"] > 0
    assert reports[0]["checkpoints"] > 0
    copy_a = (d.rig.audit_dir / "log.jsonl").read_bytes()
    copy_b = (b.state / "audit" / "log.jsonl").read_bytes()
    assert copy_a == copy_b
    chain = [decode_entry(line) for line in copy_a.splitlines()]
    assert [e.seq for e in chain] == list(range(len(chain)))
    done = [e for e in chain if e.type == "erasure_completed"]
    assert [e.body["request_id"] for e in done] == [request_id]
    assert done[0].seq == json.loads(receipt.read_text())["audit"]["seq"]
    # Host B's web app publishes the same chain (host A's is dead), and the checkpoints
    # both hosts' verify counted: the shared topic's, which hold against the chain.
    wait_for(lambda: http_get(d.webs[1], "/audit/log.jsonl") == copy_a, 30, "B's web")
    ring = Keyring.load(d.rig.audit_dir / "operator-public.pem")
    seen: list[Any] = []

    def web_serves_them() -> bool:  # its copy of the topic is refreshed every 2 s
        served = http_get(d.webs[1], "/audit/checkpoints.jsonl") or b""
        on_web = verify_log(copy_a.splitlines(True), served.splitlines(True), ring)
        seen[:] = [on_web.ok, on_web.findings, on_web.checkpoints, on_web.last_checkpoint_seq]
        return seen == [True, [], reports[0]["checkpoints"], reports[0]["last_checkpoint_seq"]]

    wait_for(web_serves_them, 30, "B's web serving the checkpoints verify counted",
             seen=lambda: {"web": seen, "verify": reports[0]})  # fmt: skip


def _check_stored_once(d: Deployment, report: Any, subject: str, other: str) -> None:
    """Every simulated gate event the policy stores is stored once per device and seq;
    the other resident's events are all there; none of the erased resident's remain."""
    assert report.published == report.confirmed == report.made > 0
    assert report.unconfirmed == report.refused == 0
    wait_for(lambda: sum(r[0] for r in stored_per_device(d.events_dsn, "demo", d.sims).values())
             >= report.expected_stored, 120, f"{report.expected_stored} gate events stored")
    stored = stored_per_device(d.events_dsn, "demo", d.sims)
    assert {k[1] for k in stored} == set(d.sims)  # through both hosts' bridges
    assert len(stored) == len(report.per_device)
    for ident, dev in report.per_device.items():
        rows, distinct, low, high = stored[(ident.tenant, ident.site, ident.gate, ident.device)]
        assert dev.seqs is not None
        assert rows == distinct == dev.expected_stored, ident
        assert dev.seqs[0] <= low <= high <= dev.seqs[1]
    site = d.rig.site
    assert stored_of(d.events_dsn, TENANT, site, other) == (50, 50)
    assert stored_of(d.events_dsn, TENANT, site, subject) == (0, 0)


def test_an_erasure_waits_for_the_audit_writer_and_never_completes_half(
    rig: ErasureRig, pg_cluster: object, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    """With no chaining writer at the moment an erasure completes, the completion's audit
    entry cannot be chained: every step is done but no receipt is issued (an outage the
    worker retries), and once a writer runs, one verifiable receipt is issued and the
    chain holds exactly one completion entry for it, however often the worker retried."""
    from tests.support.store import new_pg_database

    tag = rig.p.tag
    topics = Topics(audit_facts=f"t.{tag}.audit.facts", audit_chain=f"t.{tag}.audit.chain",
                    audit_checkpoints=f"t.{tag}.audit.checkpoints")  # fmt: skip
    create_topics(rig.p.stack, topics,
                  {topics.audit_facts, topics.audit_chain, topics.audit_checkpoints})
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
        "FACEGATE_TOPIC_AUDIT_CHECKPOINTS": topics.audit_checkpoints,
    })  # fmt: skip
    rig.p.grant()  # the roles' plan on the test's audit topics too
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    subject = pseudonym(gate.secret, RESIDENT)
    writer = rig.p.start("audit", "writer", name="writer")
    rig.apply_policy_and_consent([subject])
    # As a deployment's first host does once: workers in topic mode never make the key.
    from stream_processor.runtime.command_key import command_key

    command_key(Path(rig.p.env["FACEGATE_STATE_DIR"]))
    rig.start_cloud()
    logs = rig.p.tmp.glob("**/*.log")  # read only on a failure
    with tails_on_failure((), ((str(p.relative_to(rig.p.tmp)), p) for p in logs)):
        _erasure_across_a_writer_outage(rig, gate, subject, writer)


def _erasure_across_a_writer_outage(
    rig: ErasureRig, gate: Any, subject: str, writer: subprocess.Popen[bytes]  # noqa: F811
) -> None:
    assert gate.start("agent1").stop() == 0  # offline: the erasure waits for its ack
    mine = rig.send_events(subject, 50, gate)
    wait_for(lambda: rig.stored_of(subject) == len(mine), 120, "stored")
    out = rig.cli("erasure", "request", "--tenant", "acme", "--site", rig.site,
                  "--resident-id", RESIDENT, "--site-secret", str(gate.folder / "site.secret"),
                  "--channel", "office", "--wait", "0", check=False)  # fmt: skip
    assert out.returncode in (0, 3), out.stdout + out.stderr
    request_id = out.stdout.strip().splitlines()[0]
    wait_for(lambda: rig.status(request_id)["stores_done"], 120, "stores done", 1.0)
    assert rig.status(request_id)["devices_pending"] == ["gate-1/cam-1"]
    writer.send_signal(signal.SIGKILL)  # no writer left anywhere
    writer.wait(30)
    gate.start("agent2")  # the gate acknowledges: only the completion entry is missing
    wait_for(lambda: "ChainUnavailable" in rig.erasure_log() or "not chained" in
             rig.erasure_log(), 120, "the worker meets the outage")  # fmt: skip
    # Every step is done, but without its chained entry there is no receipt.
    wait_for(lambda: rig.status(request_id)["status"] == "complete", 60, "the steps done", 1.0)
    assert rig.status(request_id)["receipt"] is False
    assert rig.cli("erasure", "receipt", request_id, check=False).returncode != 0
    assert b"erasure_completed" not in (rig.audit_dir / "log.jsonl").read_bytes()
    rig.p.start("audit", "writer", name="writer-again")
    wait_for(lambda: rig.status(request_id)["receipt"] is True, 180, "receipt issued", 1.0)
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

