"""Kafka topics the project creates explicitly, with their configs (auto-create is off)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream_processor.errors import BrokerError
from stream_processor.runtime.ledger_client import Auth
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topic_leaders import wait_served


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def replication_for(nodes: int) -> tuple[int, int]:
    """(replication factor, min in-sync replicas) for a cluster of ``nodes`` brokers:
    3 and 2 from three brokers up, else every broker and one. The one choice of the
    stack's broker defaults, its topics and the topics the Faust workers create."""
    if nodes >= 3:
        return 3, 2
    return nodes, 1


def min_insync(replication: int) -> str:
    """Replicas that must hold a write before acks=all succeeds: 2 of 3 (any one broker
    may fail without losing an acknowledged record, a second makes producers wait), else 1."""
    return "2" if replication >= 3 else "1"


def ledger_configs(topics: Topics, replication: int = 1) -> dict[str, str]:
    """Configs of a compacted ledger (consent, policies, and the Faust table changelogs
    fed from them). A superseded record or a tombstoned key is physically gone within
    ``ledger_segment_ms + ledger_max_compaction_lag_ms + log.cleaner.backoff.ms`` plus
    one cleaner pass, and the tombstone itself ``ledger_delete_retention_ms`` later
    (see docs/processor.md)."""
    return {
        "cleanup.policy": "compact",
        "segment.ms": str(topics.ledger_segment_ms),
        "max.compaction.lag.ms": str(topics.ledger_max_compaction_lag_ms),
        "min.compaction.lag.ms": "0",
        "delete.retention.ms": str(topics.ledger_delete_retention_ms),
        "min.cleanable.dirty.ratio": "0.01",
        "min.insync.replicas": min_insync(replication),
    }


def _deleted_after(retention_ms: str, segment_ms: str, isr: str) -> dict[str, str]:
    return {
        "cleanup.policy": "delete",
        "retention.ms": retention_ms,
        "segment.ms": segment_ms,
        "min.insync.replicas": isr,
    }


def topic_specs(topics: Topics, replication: int = 1) -> list[TopicSpec]:
    """The topics of the pipeline, for a cluster that keeps ``replication`` replicas of
    each. Retention promises hold to within
    ``retention.ms + segment.ms + log.retention.check.interval.ms``."""
    seg = str(topics.segment_ms)
    isr = min_insync(replication)
    return [
        TopicSpec(
            topics.raw,
            topics.raw_partitions,
            _deleted_after(str(topics.raw_retention_ms), seg, isr),
        ),
        TopicSpec(
            topics.dlq,
            1,
            _deleted_after(str(topics.dlq_retention_ms), seg, isr),
        ),
        # The consent ledger and policy versions: one partition each (tiny, ordered),
        # compacted with a stated bound on how long a deleted record survives.
        TopicSpec(topics.consent, 1, ledger_configs(topics, replication)),
        TopicSpec(topics.policies, 1, ledger_configs(topics, replication)),
        # Cloud → edge commands (withdrawals, erasures), keyed by tenant/site.
        TopicSpec(
            topics.commands,
            topics.raw_partitions,
            _deleted_after(str(topics.commands_retention_ms), seg, isr),
        ),
        # Edge → cloud command acknowledgements, produced by the bridge, keyed by tenant/site.
        TopicSpec(
            topics.acks,
            topics.raw_partitions,
            _deleted_after(str(topics.raw_retention_ms), seg, isr),
        ),
        # Device status (counts and versions, nothing biometric): the latest per device.
        TopicSpec(topics.device_status, 1, ledger_configs(topics, replication)),
        # Erasure requests (they name a pseudonym): one partition, in order; pending
        # ones are kept by the erasure worker, so the topic needs no long retention.
        TopicSpec(
            topics.erasure,
            1,
            _deleted_after(str(topics.erasure_retention_ms), seg, isr),
        ),
        # Signed audit checkpoints: tiny, rare, and the point is that they stay.
        # One partition keeps them in order; unlimited retention, no compaction
        # (every checkpoint matters, not only the latest per key).
        TopicSpec(topics.audit_checkpoints, 1, _kept_forever(isr)),
        # Multi-host audit: facts from every process, in one order (one partition),
        # chained by the one writer into the chain topic every host reads. Kept
        # forever: the chain is the log, and a fact not yet chained must not expire.
        TopicSpec(topics.audit_facts, 1, _kept_forever(isr)),
        TopicSpec(topics.audit_chain, 1, _kept_forever(isr)),
    ]


def _kept_forever(isr: str) -> dict[str, str]:
    return {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "min.insync.replicas": isr,
    }


def ensure_topics(
    bootstrap: str, specs: list[TopicSpec], replication: int = 1, auth: Auth | None = None
) -> list[str]:
    """Create missing topics (``replication`` replicas each: 1 on the local stack, 3 on a
    three-broker cluster) and bring configs of existing ones up to date; an existing
    topic's min.insync.replicas follows the replicas it has, whatever the caller assumed.

    Returns the names created now, once the brokers serve every named topic (a leader
    for each partition). Idempotent. ``auth``: the admin role's login.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="facegate-stack", **(auth or {})
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        replicas = _replicas(admin, [s.name for s in specs if s.name in existing])
        for spec in specs:
            if spec.name in existing:
                configs = {**spec.configs, "min.insync.replicas": min_insync(replicas[spec.name])}
                admin.alter_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=configs)]
                )
                continue
            configs = {**spec.configs, "min.insync.replicas": min_insync(replication)}
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, replication, topic_configs=configs)],
                    validate_only=False,
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        wait_served(admin, [s.name for s in specs])
    finally:
        admin.close()
    return created


def _replicas(admin: Any, names: list[str]) -> dict[str, int]:
    """Replicas of each named topic (its first partition's; they are created alike)."""
    if not names:
        return {}
    return {
        t["topic"]: len(t["partitions"][0]["replicas"]) if t["partitions"] else 1
        for t in admin.describe_topics(names)
    }


def topics_in_force(bootstrap: str, topics: Topics, auth: Auth | None = None) -> Topics:
    """``topics`` with raw and dead-letter retention as the policies in force set them
    (``tuned_topics``), so that re-creating or updating the topics (``facegate stack up``)
    keeps what ``policy apply`` chose. Unchanged while no policy was applied."""
    from stream_processor.policy.keys import HISTORY_MARK, is_internal
    from stream_processor.policy.retention import compile_version
    from stream_processor.runtime.ledger_client import read_ledger

    if topics.policies not in _topic_names(bootstrap, auth):
        return topics
    raws, dlqs = [], []
    for k, v in read_ledger(bootstrap, topics.policies, timeout_s=30, auth=auth).items():
        if is_internal(k) or HISTORY_MARK in k:
            continue
        try:
            compiled = compile_version(v)
        except Exception:  # noqa: BLE001, S112 - the processors refuse it too; not a rule
            continue
        raws.append(compiled.raw_retention_ms)
        dlqs.append(compiled.dlq_retention_ms)
    return tuned_topics(topics, raws, dlqs) or topics


def _topic_names(bootstrap: str, auth: Auth | None = None) -> set[str]:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="facegate-stack", **(auth or {})
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def tuned_topics(
    topics: Topics, raw_retention_ms: list[int], dlq_retention_ms: list[int]
) -> Topics | None:
    """``topics`` with raw and dead-letter retention as short as the strictest policy
    asks (each tenant's ``transport``) and segment.ms a tenth of that (Kafka deletes
    whole closed segments); None without any policy."""
    if not raw_retention_ms or not dlq_retention_ms:
        return None
    raw, dlq = min(raw_retention_ms), min(dlq_retention_ms)
    segment = max(10_000, min(raw, dlq) // 10)
    return topics.model_copy(
        update={"raw_retention_ms": raw, "dlq_retention_ms": dlq, "segment_ms": segment}
    )


def tune_transport_topics(
    bootstrap: str,
    topics: Topics,
    raw_retention_ms: list[int],
    dlq_retention_ms: list[int],
    auth: Auth | None = None,
) -> tuple[int, int, int] | None:
    """Raw and dead-letter topics keep records no longer than the strictest policy asks
    (``tuned_topics``). Returns (raw, dlq, segment) ms, or None without any policy.

    Used by ``facegate policy apply`` and the console's apply alike."""
    tuned = tuned_topics(topics, raw_retention_ms, dlq_retention_ms)
    if tuned is None:
        return None
    specs = topic_specs(tuned)
    wanted = [s for s in specs if s.name in (topics.raw, topics.dlq)]
    ensure_topics(bootstrap, wanted, auth=auth)
    return tuned.raw_retention_ms, tuned.dlq_retention_ms, tuned.segment_ms
