"""The replication check of ``facegate stack topics`` (pure part): which topics are the
pipeline's, and which of them keep fewer replicas, or a lower or impossible
min.insync.replicas, than the cluster's size asks. On the three-node cluster:
tests/reliability/test_three_brokers.py."""

from __future__ import annotations

import pytest

from stream_processor.runtime.replication import (
    TopicReplication,
    cluster_problems,
    pipeline_topic_names,
    replication_problems,
    sync_problems,
)
from stream_processor.runtime.settings import Topics

pytestmark = pytest.mark.unit


def test_the_pipeline_topics_are_its_own_and_its_workers() -> None:
    names = [
        "facegate.events.raw", "facegate.consent", "facegate-processor-consent-changelog",
        "facegate-processor-__assignor-__leader", "facegate-processor-erasure-__assignor-__leader",
        "facegate-processorX-changelog", "other.app.topic", "__consumer_offsets",
    ]  # fmt: skip
    got = pipeline_topic_names(names, Topics(), ["facegate-processor"])
    assert got == [
        "facegate-processor-__assignor-__leader",
        "facegate-processor-consent-changelog",
        "facegate-processor-erasure-__assignor-__leader",
        "facegate.consent",
        "facegate.events.raw",
    ]  # another app's topics (and a name that only starts alike) are none of ours


def test_three_brokers_flag_what_one_broker_loss_would_hurt() -> None:
    seen = [
        TopicReplication("facegate-processor-consent-changelog", 1, 1),  # X10's finding
        TopicReplication("facegate-processor-__assignor-__leader", 3, 1),
        TopicReplication("facegate.events.raw", 3, 2),
        TopicReplication("t.too-strict", 1, 2),
        TopicReplication("t.two", 2, 1),
    ]
    problems = {p.topic: p.detail for p in replication_problems(seen, 3, 2)}
    assert set(problems) == {
        "facegate-processor-consent-changelog", "facegate-processor-__assignor-__leader",
        "t.too-strict", "t.two",
    }  # fmt: skip
    assert problems["facegate-processor-consent-changelog"].startswith("1 replica(s)")
    assert "min.insync.replicas 1" in problems["facegate-processor-__assignor-__leader"]
    assert problems["t.too-strict"].startswith("1 replica(s)")


def test_a_single_node_asks_one_replica_but_refuses_an_impossible_min_isr() -> None:
    seen = [TopicReplication("a", 1, 1), TopicReplication("b", 1, 2), TopicReplication("c", 3, 2)]
    problems = replication_problems(seen, 1, 1)
    assert [(p.topic, "every write" in p.detail) for p in problems] == [("b", True)]
    assert replication_problems([], 3, 2) == []


def test_a_replica_plan_only_adds_keeping_the_leader_first() -> None:
    from stream_processor.runtime.reassign import replica_plan

    partitions = {0: [2], 1: [3], 2: [1, 2, 3], 3: [1, 3]}
    plan = replica_plan(partitions, [1, 2, 3], 3)
    assert set(plan) == {0, 1, 3}  # partition 2 has its three
    for p, new in plan.items():
        assert new[: len(partitions[p])] == partitions[p]  # as they were, leader first
        assert sorted(new) == [1, 2, 3]
    assert replica_plan(partitions, [1, 2, 3, 4, 5], 3)[0][0] == 2
    assert replica_plan({0: [1]}, [1, 2, 3], 1) == {}


def test_a_replica_plan_spreads_the_new_copies() -> None:
    from stream_processor.runtime.reassign import replica_plan

    plan = replica_plan({p: [1] for p in range(4)}, [1, 2, 3, 4, 5], 2)
    assert sorted(new[1] for new in plan.values()) == [2, 3, 4, 5]


def test_more_replicas_than_brokers_is_refused() -> None:
    from stream_processor.errors import ConfigError
    from stream_processor.runtime.reassign import replica_plan

    with pytest.raises(ConfigError, match="3 replicas asked, the cluster has 2 brokers"):
        replica_plan({0: [1]}, [1, 2], 3)


def test_partitions_out_of_sync_are_problems_of_their_own() -> None:
    seen = [
        TopicReplication("facegate.events.raw", 3, 2, under_replicated=2, in_sync=2),
        TopicReplication("facegate.consent", 3, 2, under_replicated=0, in_sync=3),
        TopicReplication("t.lost", 3, 2, under_replicated=1, in_sync=0),
    ]
    problems = sync_problems(seen)
    assert [(p.topic, p.kind) for p in problems] == [
        ("facegate.events.raw", "sync"), ("t.lost", "sync")
    ]  # fmt: skip
    assert problems[0].detail.startswith("2 partition(s) under-replicated, as few as 2 of 3")
    assert "0 of 3" in problems[1].detail


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        (1, {("b", "replicas"), ("c", "sync")}),
        (3, {("a", "replicas"), ("b", "replicas"), ("c", "sync")}),
    ],
)
def test_the_cluster_check_asks_what_its_size_asks_and_full_sync(
    nodes: int, expected: set[tuple[str, str]]
) -> None:
    seen = [
        TopicReplication("a", 1, 1, in_sync=1),
        TopicReplication("b", 1, 2, in_sync=1),  # min ISR above its replicas: any size
        TopicReplication("c", 3, 2, under_replicated=1, in_sync=2),
    ]
    assert {(p.topic, p.kind) for p in cluster_problems(seen, nodes)} == expected
