"""The pipeline on the three-node cluster: gates publish through Mosquitto, the bridge
produces to Kafka (acks=all), two processor workers share the raw partitions. The
leader of raw partitions is killed -9, or paused, mid-stream: nothing is lost, no row
is stored twice, processing goes on; with the broker still out, a new worker rebuilds its
consent table from the replicated changelog and enforces it; once it is back the in-sync
replicas recover, and every topic (the workers' own changelogs and leader topic too) has
three replicas and min.insync.replicas=2."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.wire import encode_event
from tests.bridge.conftest import BridgeRig, events_for
from tests.conftest import Pipeline, free_ports, wait_for
from tests.reliability.conftest import Cluster, ClusterStack
from tests.support.kafka import admin_client, login_kwargs, producer
from tests.support.processor import grant_record, make_event

pytestmark = pytest.mark.e2e

N = 6_000
SITES = 3
#: Subjects of the face events sent while a broker is out: one has consent, one not.
CONSENTED, UNCONSENTED = 7, 8


@pytest.fixture
def rig(three_brokers: Cluster, tmp_path: Path) -> Iterator[BridgeRig]:
    from stream_processor.runtime.topics import ensure_topics, topic_specs

    p = Pipeline(stack=ClusterStack(three_brokers), tag=uuid.uuid4().hex[:10], tmp=tmp_path)
    p.extra_env.update({
        "FACEGATE_STORE": "sqlite",
        "FACEGATE_BRIDGE_METRICS_PORT": str(free_ports(1)[0]),
        "FACEGATE_PROCESSOR_BATCH_SIZE": "200",
    })  # fmt: skip
    auth = login_kwargs(three_brokers.settings())
    ensure_topics(three_brokers.bootstrap, topic_specs(p.topics(), 3), replication=3, auth=auth)
    p.grant()  # the bridge and the worker run as their roles under the plan
    try:
        yield BridgeRig(p)
    finally:
        p.stop_all()
        p.revoke()


def _stream_through_a_fault(
    rig: BridgeRig,
    cluster: Cluster,
    fault: Callable[[int], None],
    heal: Callable[[int], None],
    within_s: float = 300.0,
    new_worker: bool = False,
) -> str:
    """Gates publish N events; once a fifth is stored, ``fault`` hits the broker that
    leads most raw partitions. Every event must be stored exactly once while it lasts,
    all of them within ``within_s`` of the fault; with ``new_worker``, a worker started
    while the fault lasts enforces the consent ledger; then ``heal`` and every raw
    partition's ISR must be back to three, and every topic has three replicas."""
    rig.apply_policy()
    rig.prepare_session()
    _grant(cluster, rig.p.topics().consent, CONSENTED)
    sent: set[str] = set()
    batches = []
    for s in range(SITES):
        events = events_for(f"site-{s}", N // SITES)
        sent |= {e.event_id for e in events}
        batches.append((rig.device(f"site-{s}"), [encode_event(e) for e in events]))
    raw = rig.p.topics().raw
    workers = [
        rig.p.start("processor", "worker", "--worker-name", "wa", name="wa"),
        rig.p.start("processor", "worker", "--worker-name", "wb", name="wb"),
    ]
    rig.start_bridge()
    pubs = [rig.publish(conn, payloads) for conn, payloads in batches]

    wait_for(lambda: len(rig.stored_ids()) >= N // 5, 180, "events flowing into the store")
    leaders = [p["leader"] for p in cluster.partitions(raw)]
    victim = max(set(leaders), key=leaders.count)  # leads the most raw partitions
    fault(victim)
    hit_at = time.monotonic()
    try:
        at_fault = len(rig.stored_ids())
        assert at_fault < N, "hit too late to prove anything"
        assert all(pub.wait(180) == 0 for pub in pubs)  # every PUBACK, one broker out
        wait_for(lambda: len(rig.stored_ids()) >= N, 300, "every event stored, one broker out")
        recovered_s = time.monotonic() - hit_at
        assert recovered_s < within_s, f"all stored only {recovered_s:.1f}s after the fault"
        time.sleep(3)  # a duplicate row would show up now
        stored = rig.stored_ids()
        assert len(stored) == len(set(stored)) == N
        assert set(stored) == sent
        assert rig.count(rig.p.topics().dlq) == 0
        assert victim not in {p["leader"] for p in cluster.partitions(raw)}
        # Not under SIGSTOP: a new worker then took ~2 min to store, too long for the suite.
        failed_starts = (
            _consent_enforced_by_a_new_worker(rig, workers, batches[0][0]) if new_worker else []
        )
    finally:
        heal(victim)
    cluster.wait_full_isr(raw)  # the broker back in every raw partition's ISR
    _every_topic_replicated(cluster, rig.p.processor_app)
    return (
        f"broker {victim} hit at {at_fault}/{N} stored; all stored {recovered_s:.1f}s later;"
        f" the new worker's failed starts with the broker out: {failed_starts}"
    )


def _grant(cluster: Cluster, topic: str, subject_id: int) -> None:
    record = grant_record(subject_id, site="site-0")
    prod = producer(cluster.settings(), acks="all")
    try:
        prod.send(topic, key=record.key, value=record.encode()).get(timeout=30)
    finally:
        prod.close()


def _consent_enforced_by_a_new_worker(
    rig: BridgeRig, workers: list[subprocess.Popen[bytes]], conn: Any
) -> list[int]:
    """Both workers killed -9 while a broker is out: a new one rebuilds its consent
    table from the changelog (on the two brokers left) and enforces it. Refused face
    events go first on the one site partition, so once the consented ones are stored
    the refused were decided: none stored. Returns the exit codes of the new worker's
    failed starts: a start may fail while a broker is out (seen with a paused one:
    "Kafka refused: RequestTimedOutError"), and is retried as its unit does
    (``Restart=on-failure``, ``RestartSec=5``)."""
    for worker in workers:
        worker.kill()
        worker.wait(30)
    argv = ("processor", "worker", "--worker-name", "wc")
    new = [rig.p.start(*argv, name="wc")]
    failed: list[int] = []
    seq = N // SITES  # site-0's device goes on after its key-card events
    refused = [make_event(subject_id=UNCONSENTED, site="site-0", seq=seq + i) for i in range(10)]
    allowed = [make_event(subject_id=CONSENTED, site="site-0", seq=seq + 10 + i) for i in range(10)]
    assert rig.publish(conn, [encode_event(e) for e in refused + allowed]).wait(120) == 0
    want = {e.event_id for e in allowed}

    def stored() -> bool:
        code = new[-1].poll()
        if code is not None:
            failed.append(code)
            assert code != 0 and len(failed) < 10, rig.p.log("wc")[-2000:]
            time.sleep(5)
            new.append(rig.p.start(*argv, name="wc"))
        return want <= set(rig.stored_ids())

    wait_for(stored, 180, "face events with consent stored by the new worker, one broker out")
    assert not {e.event_id for e in refused} & set(rig.stored_ids())
    return failed


def _every_topic_replicated(cluster: Cluster, processor_app: str) -> None:
    """Every topic on the cluster, the workers' own included, as the admin sees it."""
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = admin_client(cluster.settings(), client_id="t-reliability")
    try:
        names = sorted(admin.list_topics())
        described = admin.describe_topics(names)
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        )
    finally:
        admin.close()
    own = {f"{processor_app}-{t}" for t in
           ("consent-changelog", "policies-changelog", "__assignor-__leader")}  # fmt: skip
    assert own <= set(names), sorted(own - set(names))
    replicas = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]} for t in described}
    assert {n: r for n, r in replicas.items() if r != {3}} == {}
    isr = {
        res[3]: {c[0]: c[1] for c in res[4]}["min.insync.replicas"]
        for resp in configs for res in resp.resources
    }  # fmt: skip
    assert {n: v for n, v in isr.items() if v != "2"} == {}


def test_raw_leader_killed_mid_stream_nothing_lost_nothing_stored_twice(
    rig: BridgeRig, three_brokers: Cluster
) -> None:
    """kill -9 of the leader; its restart brings the in-sync replicas back."""
    print("\nkill -9:", _stream_through_a_fault(
        rig, three_brokers,
        lambda n: three_brokers.node(n).kill(), lambda n: three_brokers.node(n).up(),
        new_worker=True,
    ))  # fmt: skip


def test_raw_leader_paused_mid_stream_nothing_lost_nothing_stored_twice(
    rig: BridgeRig, three_brokers: Cluster
) -> None:
    """SIGSTOP of the leader: its connections stay open and answer nothing, as in a
    network partition between the bridge and that broker. The controller fences it
    (broker.session.timeout.ms) and its partitions move; SIGCONT lets it rejoin."""

    def pause(node: int) -> None:
        pid = three_brokers.node(node).status().pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)

    def resume(node: int) -> None:
        pid = three_brokers.node(node).status().pid
        assert pid is not None
        os.kill(pid, signal.SIGCONT)

    # Bound: fencing (broker.session.timeout.ms, 9 s) plus the clients' request timeouts
    # to the silent broker (bridge socket.timeout.ms 12 s, raw consumer 12 s), with room
    # for a loaded machine. Measured 12.9 s (load 1); 50.5 s with the clients' defaults.
    print("\nSIGSTOP:", _stream_through_a_fault(rig, three_brokers, pause, resume, within_s=35))
