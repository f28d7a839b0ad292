"""Whether the pipeline's topics, and those its Faust workers created (table
changelogs, the assignor's leader topic), keep the replicas the cluster's size asks
for (``topics.replication_for``).

Kafka never changes a topic's replicas after it is created: a worker that ran before
the cluster grew, or before the workers chose their replication by the cluster's size,
left topics on one replica, and a broker loss then takes the worker's table state with
it. ``replication_problems`` is the pure decision; ``describe_replication`` looks
through the admin client. The fix is a partition reassignment (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stream_processor.errors import BrokerError
from stream_processor.runtime.settings import Topics


@dataclass(frozen=True)
class TopicReplication:
    """What the cluster keeps of one topic."""

    name: str
    #: replicas of its partition that has the fewest
    replicas: int
    #: its ``min.insync.replicas`` (its own, or the broker default it inherits)
    min_insync: int


@dataclass(frozen=True)
class ReplicationProblem:
    topic: str
    detail: str


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
    isr = {
        res[3]: int({c[0]: c[1] for c in res[4]}.get("min.insync.replicas") or 1)
        for answer in answers
        for res in answer.resources
    }
    return [
        TopicReplication(
            t["topic"],
            min((len(p["replicas"]) for p in t["partitions"]), default=0),
            isr.get(t["topic"], 1),
        )
        for t in described
    ]
