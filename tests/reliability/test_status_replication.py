"""``facegate status`` on three Kafka nodes: a pipeline topic with fewer replicas than
the cluster's size, and partitions whose in-sync replicas fell below their replicas (a
broker down), are each one ``problem:`` line pointing to the fix, and fail the status."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.reliability.conftest import Cluster
from tests.support.kafka import admin_client

pytestmark = pytest.mark.component

RAW = "facegate.events.raw"


def _problems(cluster: Cluster) -> list[str]:
    done = cluster.facegate("status", "--window", "1")
    assert "Traceback" not in done.stderr, done.stderr
    # The bridges, workers and web app do not run here: the status fails anyway; the
    # problem lines are what this test is about.
    assert done.returncode == 1, done.stdout + done.stderr
    return [ln for ln in done.stdout.splitlines() if ln.startswith("problem:")]


def _raw_in_sync(admin: Any) -> int:
    (desc,) = admin.describe_topics([RAW])
    return min(len(p["isr"]) for p in desc["partitions"])


def test_status_reports_too_few_replicas_and_replicas_out_of_sync(
    three_brokers: Cluster,
) -> None:
    from kafka.admin import NewTopic

    # A worker's changelog left on one replica (on node 1, which stays up).
    name = f"facegate-processor-t{uuid.uuid4().hex[:8]}-changelog"
    admin = admin_client(three_brokers)
    try:
        # A node the test before restarted may still be catching up.
        wait_for(lambda: _raw_in_sync(admin) == 3, 90, "the raw topic fully in sync")
        admin.create_topics([NewTopic(name, -1, -1, replica_assignments={0: [1]})])
        problems = _problems(three_brokers)
        mine = [p for p in problems if f" {name}:" in p]
        assert mine == [
            f"problem: topic {name}: 1 replica(s), the cluster's size asks 3; fix: facegate"
            " stack topics --add-replicas (docs/operations.md, 'Topics with too few replicas')"
        ], problems
        assert not [p for p in problems if p.startswith(f"problem: topic {RAW}:")], problems
        three_brokers.node(3).down()
        wait_for(lambda: _raw_in_sync(admin) < 3, 30, "node 3 out of the raw topic's ISR")
        problems = _problems(three_brokers)
        raw = [p for p in problems if p.startswith(f"problem: topic {RAW}:")]
        assert len(raw) == 1 and "under-replicated, as few as 2 of 3" in raw[0], problems
        assert raw[0].endswith("fix: start the broker that is down, or see why it falls"
                               " behind (docs/operations.md, 'What to watch')")  # fmt: skip
    finally:
        admin.close()
        # Node 3 back first (the fixture would restart it next anyway): kafka-python's
        # admin may take the stopped node for the controller a deletion goes to.
        three_brokers.node(3).up()
        cleaner = admin_client(three_brokers)
        try:
            cleaner.delete_topics([name])
        finally:
            cleaner.close()
