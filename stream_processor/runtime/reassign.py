"""More replicas for existing topics: a partition reassignment through the admin client,
as Kafka's ``kafka-reassign-partitions`` tool does it, then the min.insync.replicas
the new replica count asks for.

Kafka never changes a topic's replicas by itself (``runtime/replication.py`` finds the
topics that have too few). A reassignment only adds replicas here: the current ones
stay, the leader first, so leadership does not move; the new ones copy the partition
while it is in use. min.insync.replicas is raised only once every replica is in sync
(raised before, writes with acks=all would be refused while the copies catch up).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stream_processor.errors import BrokerError, ConfigError
from stream_processor.runtime.topics import min_insync


def replica_plan(
    partitions: Mapping[int, list[int]], brokers: Iterable[int], replication: int
) -> dict[int, list[int]]:
    """New replica lists of the partitions (``{partition: replicas, leader first}``)
    that have fewer than ``replication``: their replicas as they are, then brokers
    they lack, the least used first (in this plan), then by id. Pure."""
    brokers = sorted(set(brokers))
    if len(brokers) < replication:
        raise ConfigError(f"{replication} replicas asked, the cluster has {len(brokers)} brokers")
    load = Counter(b for replicas in partitions.values() for b in replicas)
    plan: dict[int, list[int]] = {}
    for partition, replicas in sorted(partitions.items()):
        if len(replicas) >= replication:
            continue
        new = list(replicas)
        for b in sorted((b for b in brokers if b not in new), key=lambda b: (load[b], b)):
            if len(new) == replication:
                break
            new.append(b)
            load[b] += 1
        plan[partition] = new
    return plan


def add_replicas(
    bootstrap: str,
    names: list[str],
    replication: int,
    auth: Mapping[str, Any] | None = None,
    timeout_s: float = 300.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[int, list[int]]]:
    """Give each topic in ``names`` ``replication`` replicas per partition, wait until
    all are in sync, then set the min.insync.replicas of each (``topics.min_insync``). Returns
    the reassignments made (topic → partition → replicas). ``auth``: the admin role's
    kafka-python login. Idempotent: a topic that has its replicas is left as it is."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="facegate-stack", **dict(auth or {})
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        brokers = [b["node_id"] for b in admin.describe_cluster()["brokers"]]
        plans = {
            t["topic"]: replica_plan(
                {p["partition"]: list(p["replicas"]) for p in t["partitions"]}, brokers, replication
            )
            for t in admin.describe_topics(names)
        }
        plans = {name: plan for name, plan in plans.items() if plan}
        if plans:
            _reassign(admin, plans)
            _wait_in_sync(admin, plans, replication, timeout_s, sleep)
        isr = min_insync(replication)
        for name in names:  # every replica in sync now; a topic that had them, too
            # AlterConfigs replaces a topic's whole config: send its own ones along
            # (a changelog without cleanup.policy=compact would expire its table).
            configs = {**_own_configs(admin, name), "min.insync.replicas": isr}
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=configs)])
    except KafkaError as exc:
        raise BrokerError(f"Kafka at {bootstrap}: adding replicas failed: {exc}") from exc
    finally:
        admin.close()
    return plans


#: ``config_source`` of a config set on the topic itself (DescribeConfigs v1 and later).
DYNAMIC_TOPIC_CONFIG = 1


def _own_configs(admin: Any, name: str) -> dict[str, str]:
    from kafka.admin import ConfigResource, ConfigResourceType

    (answer,) = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    return {
        entry[0]: entry[1]
        for resource in answer.resources
        for entry in resource[4]
        if entry[3] == DYNAMIC_TOPIC_CONFIG
    }


def _reassign(admin: Any, plans: Mapping[str, Mapping[int, list[int]]]) -> None:
    from kafka.errors import for_code
    from kafka.protocol.admin import AlterPartitionReassignmentsRequest

    request = AlterPartitionReassignmentsRequest[0](
        timeout_ms=30_000,
        topics=[
            (name, [(p, replicas, {}) for p, replicas in sorted(plan.items())], {})
            for name, plan in sorted(plans.items())
        ],
        tags={},
    )
    # Any broker takes it and forwards it to the active controller (KRaft).
    response = admin.send_request(request)
    failures = [f"{response.error_code} {response.error_message}"] if response.error_code else []
    failures += [
        f"{name}[{part[0]}]: {for_code(part[1]).__name__} {part[2] or ''}".rstrip()
        for name, parts, _ in response.responses
        for part in parts
        if part[1]
    ]
    if failures:
        raise BrokerError("the reassignment was refused: " + "; ".join(failures))


def _wait_in_sync(
    admin: Any,
    plans: Mapping[str, Mapping[int, list[int]]],
    replication: int,
    timeout_s: float,
    sleep: Callable[[float], None],
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        lagging = [
            f"{t['topic']}[{p['partition']}]"
            for t in admin.describe_topics(list(plans))
            for p in t["partitions"]
            if p["partition"] in plans[t["topic"]]
            and (len(p["replicas"]) < replication or len(p["isr"]) < replication)
        ]
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"the new replicas of {', '.join(lagging)} are not in sync after {timeout_s:.0f} s:"
                " the reassignment goes on in Kafka; run the command again to finish"
            )
        sleep(1.0)
