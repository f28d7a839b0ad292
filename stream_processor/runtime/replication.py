"""Whether the pipeline's topics, and those its Faust workers created (table
changelogs, the assignor's leader topic), keep the replicas the cluster's size asks
for (``topics.replication_for``).

Kafka never changes a topic's replicas after it is created: a worker that ran before
the cluster grew, or before the workers chose their replication by the cluster's size,
left topics on one replica, and a broker loss then takes the worker's table state with
it. ``replication_problems`` is the pure decision (``sync_problems`` for partitions out
of sync, ``cluster_problems`` both, for ``facegate status``); ``describe_replication``
looks through the admin client. The fix is a partition reassignment (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stream_processor.errors import BrokerError
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import replication_for


@dataclass(frozen=True)
class TopicReplication:
    """What the cluster keeps of one topic."""

    name: str
    #: replicas of its partition that has the fewest
    replicas: int
    #: its ``min.insync.replicas`` (its own, or the broker default it inherits)
    min_insync: int
    #: its partitions whose in-sync replicas are fewer than their replicas
    under_replicated: int = 0
    #: in-sync replicas of its partition that has the fewest (None: not looked at)
    in_sync: int | None = None


@dataclass(frozen=True)
class ReplicationProblem:
    topic: str
    detail: str
    #: replicas: too few, or min.insync.replicas wrong (fixed by adding replicas);
    #: sync: a replica out of sync (a broker down or behind); unknown: not seen
    kind: Literal["replicas", "sync", "unknown"] = "replicas"


def pipeline_topic_names(names: Iterable[str], topics: Topics, app_ids: Iterable[str]) -> list[str]:
    """The names among ``names`` that are the pipeline's: its topics, and those of the
    Faust apps ``app_ids`` (Faust names every topic it creates ``<app id>-…``)."""
    own = {v for v in topics.model_dump().values() if isinstance(v, str)}
    prefixes = tuple(f"{a}-" for a in app_ids)
    return sorted(n for n in names if n in own or n.startswith(prefixes))


def replication_problems(
    seen: Iterable[TopicReplication], replication: int, min_insync: int
) -> list[ReplicationProblem]:
    """Topics with fewer replicas than ``replication`` (one broker loss may lose their
    records or stall their writers), or a min.insync.replicas below ``min_insync`` (an
    acknowledged write may sit on one broker) or above their replicas (every write
    with acks=all refused). Pure."""
    problems = []
    for t in sorted(seen, key=lambda t: t.name):
        detail = _problem(t, replication, min_insync)
        if detail:
            problems.append(ReplicationProblem(t.name, detail))
    return problems


def sync_problems(seen: Iterable[TopicReplication]) -> list[ReplicationProblem]:
    """Topics with a partition whose in-sync replicas (ISR) are fewer than its replicas:
    a broker holding one is down or behind, and one more loss may stall the writers
    (below min.insync.replicas) or lose the partition. Pure."""
    return [
        ReplicationProblem(
            t.name,
            f"{t.under_replicated} partition(s) under-replicated, as few as {t.in_sync} of"
            f" {t.replicas} replica(s) in sync: a broker is down or behind",
            "sync",
        )
        for t in sorted(seen, key=lambda t: t.name)
        if t.under_replicated
    ]


def cluster_problems(seen: Iterable[TopicReplication], nodes: int) -> list[ReplicationProblem]:
    """Every replication problem of ``seen`` on a cluster of ``nodes`` brokers: too few
    replicas or a wrong min.insync.replicas for its size (``replication_for``), and
    partitions out of sync. Pure."""
    seen = list(seen)
    replication, min_insync = replication_for(nodes)
    return replication_problems(seen, replication, min_insync) + sync_problems(seen)


def _problem(t: TopicReplication, replication: int, min_insync: int) -> str | None:
    if t.replicas < replication:
        return f"{t.replicas} replica(s), the cluster's size asks {replication}"
    if t.min_insync > t.replicas:
        return (
            f"min.insync.replicas {t.min_insync} above its {t.replicas} replica(s):"
            " every write with acks=all is refused"
        )
    if t.min_insync < min_insync:
        return f"min.insync.replicas {t.min_insync}, the cluster's size asks {min_insync}"
    return None


def describe_replication(
    bootstrap: str, topics: Topics, app_ids: Iterable[str], auth: Mapping[str, Any] | None = None
) -> list[TopicReplication]:
    """Replicas and min.insync.replicas of every pipeline topic on the cluster
    (``pipeline_topic_names``). ``auth``: the admin role's kafka-python login."""
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
        names = pipeline_topic_names(admin.list_topics(), topics, app_ids)
        if not names:
            return []
        described = admin.describe_topics(names)
        answers = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        )
    except KafkaError as exc:
        raise BrokerError(f"Kafka at {bootstrap}: describing the topics failed: {exc}") from exc
    finally:
        admin.close()
    isr = _min_insync(bootstrap, answers)
    return [_replication(t, isr.get(t["topic"], 1)) for t in described]


def _min_insync(bootstrap: str, answers: Iterable[Any]) -> dict[str, int]:
    """Each topic's min.insync.replicas from DescribeConfigs answers. A topic whose
    configs were refused is an error: read as the default 1, it would hide (or invent)
    a problem."""
    found: dict[str, int] = {}
    for answer in answers:
        for code, _, _, name, configs in (res[:5] for res in answer.resources):
            if code:
                raise BrokerError(
                    f"Kafka at {bootstrap}: reading the configs of topic {name} failed"
                    f" (error {code}; is DESCRIBE_CONFIGS granted? facegate stack up"
                    " applies the ACLs)"
                )
            found[name] = int({c[0]: c[1] for c in configs}.get("min.insync.replicas") or 1)
    return found


def _replication(described: Mapping[str, Any], min_insync: int) -> TopicReplication:
    partitions = described["partitions"]
    return TopicReplication(
        described["topic"],
        min((len(p["replicas"]) for p in partitions), default=0),
        min_insync,
        under_replicated=sum(1 for p in partitions if len(p["isr"]) < len(p["replicas"])),
        in_sync=min((len(p["isr"]) for p in partitions), default=0),
    )
