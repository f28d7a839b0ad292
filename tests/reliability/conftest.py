"""A three-node KRaft cluster (RF 3, min.insync.replicas=2) of this folder's own, started
by ``facegate stack up --kafka-nodes 3`` on free ports, shared by its tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    FACEGATE,
    SUITE_KAFKA_AUTH,
    StackHandle,
    broker_log_tails,
    free_ports,
    make_state_dir,
    stack_env,
    wait_for,
)
from tests.support.kafka import forget, kafka_kwargs, register


@dataclass
class Cluster:
    env: dict[str, str]
    state_dir: Path

    def settings(self):  # type: ignore[no-untyped-def]
        from stream_processor.stack.settings import StackSettings

        e = self.env
        return StackSettings(
            state_dir=self.state_dir,
            mqtt_port=int(e["FACEGATE_MQTT_PORT"]),
            mqtt_tls_port=int(e["FACEGATE_MQTT_TLS_PORT"]),
            kafka_port=int(e["FACEGATE_KAFKA_PORT"]),
            kafka_controller_port=int(e["FACEGATE_KAFKA_CONTROLLER_PORT"]),
            kafka_nodes=3,
            kafka_node_ports=json.loads(e["FACEGATE_KAFKA_NODE_PORTS"]),
            kafka_auth=e.get("FACEGATE_KAFKA_AUTH", "false") == "true",
        )

    @property
    def bootstrap(self) -> str:
        return str(self.settings().kafka_bootstrap)

    def node(self, node_id: int):  # type: ignore[no-untyped-def]
        from stream_processor.stack.cluster import KafkaCluster

        return KafkaCluster(self.settings()).node(node_id)

    def partitions(self, topic: str) -> list[dict[str, Any]]:
        """The topic's partitions (leader, replicas, isr) as the admin client sees them."""
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(**kafka_kwargs(self.settings()), client_id="t-reliability")
        try:
            (desc,) = admin.describe_topics([topic])
            return sorted(desc["partitions"], key=lambda p: p["partition"])
        finally:
            admin.close()

    def layout(self, topic: str) -> str:
        """Each partition's leader and in-sync replicas, for a timed-out wait's message."""
        return "; ".join(f"p{p['partition']} leader {p['leader']} isr {sorted(p['isr'])}"
                         for p in self.partitions(topic))  # fmt: skip

    def wait_full_isr(self, topic: str, timeout_s: float = 120) -> None:
        """Wait until every replica of every partition of ``topic`` is in sync. A broker
        that is rejoining (restarted, or resumed after SIGSTOP) may refuse or drop the
        admin client's first connection (kafka-python's NodeNotReadyError when it is the
        controller): that is a look to repeat, not the outcome."""
        from kafka.errors import KafkaError

        def in_sync() -> bool:
            try:
                return all(len(p["isr"]) == 3 for p in self.partitions(topic))
            except KafkaError:
                return False

        def seen() -> str:
            try:
                return self.layout(topic)
            except KafkaError as exc:
                return f"the admin client failed: {exc!r}"

        wait_for(in_sync, timeout_s, f"all three replicas of {topic} in sync",
                 interval_s=1, seen=seen)  # fmt: skip

    def facegate(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FACEGATE, *args], env={**os.environ, **self.env},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip


class ClusterStack(StackHandle):
    """The cluster as the shared pipeline helpers see a stack (``Pipeline``)."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(env=cluster.env, state_dir=cluster.state_dir)
        self.cluster = cluster

    def settings(self):  # type: ignore[no-untyped-def]
        return self.cluster.settings()


def _all_nodes_up(cluster: Cluster) -> None:
    """Start any node a test left down (a failed test may stop between its kill and its
    restart) and wait for all three: the next test must not inherit a lost quorum."""
    from stream_processor.stack.cluster import KafkaCluster

    KafkaCluster(cluster.settings()).up()


@pytest.fixture
def three_brokers(cluster_session: Cluster) -> Iterator[Cluster]:
    """The session's cluster with every node running, before the test and after it."""
    _all_nodes_up(cluster_session)
    try:
        yield cluster_session
    finally:
        _all_nodes_up(cluster_session)


@pytest.fixture(scope="session")
def cluster_session() -> Iterator[Cluster]:
    state = make_state_dir("facegate-cluster-")
    ports = free_ports(8)
    env = {
        **stack_env(state, ports[:4]),
        "FACEGATE_KAFKA_NODE_PORTS": json.dumps(ports[4:]),
        "FACEGATE_KAFKA_HEAP": "-Xms128m -Xmx384m",
        # As the suite's stack: SASL/SCRAM and the role ACLs (tests/support/kafka.py).
        "FACEGATE_KAFKA_AUTH": "true" if SUITE_KAFKA_AUTH else "false",
    }
    cluster = Cluster(env=env, state_dir=state)
    # Processes started on it reach the cluster while any one node is down.
    env["FACEGATE_KAFKA_BOOTSTRAP"] = cluster.bootstrap
    up = cluster.facegate("stack", "up", "--kafka-nodes", "3")
    try:
        assert up.returncode == 0, up.stdout + up.stderr + broker_log_tails(state)
        register(cluster.settings())
        yield cluster
    finally:
        forget(cluster.settings())
        cluster.facegate("stack", "down")
        shutil.rmtree(state, ignore_errors=True)
