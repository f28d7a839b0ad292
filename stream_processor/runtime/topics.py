"""Kafka topics the project creates explicitly, with their configs (auto-create is off)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stream_processor.errors import BrokerError
from stream_processor.runtime.settings import Topics


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def ledger_configs(topics: Topics) -> dict[str, str]:
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
        "min.insync.replicas": "1",
    }


def topic_specs(topics: Topics) -> list[TopicSpec]:
    """The topics of the pipeline. Retention promises hold to within
    ``retention.ms + segment.ms + log.retention.check.interval.ms``."""
    seg = str(topics.segment_ms)
    return [
        TopicSpec(
            topics.raw,
            topics.raw_partitions,
            {
                "cleanup.policy": "delete",
                "retention.ms": str(topics.raw_retention_ms),
                "segment.ms": seg,
                "min.insync.replicas": "1",
            },
        ),
        TopicSpec(
            topics.dlq,
            1,
            {
                "cleanup.policy": "delete",
                "retention.ms": str(topics.dlq_retention_ms),
                "segment.ms": seg,
            },
        ),
        # The consent ledger and policy versions: one partition each (tiny, ordered),
        # compacted with a stated bound on how long a deleted record survives.
        TopicSpec(topics.consent, 1, ledger_configs(topics)),
        TopicSpec(topics.policies, 1, ledger_configs(topics)),
        # Cloud → edge commands (withdrawals, erasures), keyed by tenant/site.
        TopicSpec(
            topics.commands,
            topics.raw_partitions,
            {
                "cleanup.policy": "delete",
                "retention.ms": str(topics.commands_retention_ms),
                "segment.ms": seg,
            },
        ),
        # Edge → cloud command acknowledgements, produced by the bridge, keyed by tenant/site.
        TopicSpec(
            topics.acks,
            topics.raw_partitions,
            {
                "cleanup.policy": "delete",
                "retention.ms": str(topics.raw_retention_ms),
                "segment.ms": seg,
            },
        ),
        # Device status (counts and versions, nothing biometric): the latest per device.
        TopicSpec(topics.device_status, 1, ledger_configs(topics)),
        # Erasure requests (they name a pseudonym): one partition, in order; pending
        # ones are kept by the erasure worker, so the topic needs no long retention.
        TopicSpec(
            topics.erasure,
            1,
            {
                "cleanup.policy": "delete",
                "retention.ms": str(topics.erasure_retention_ms),
                "segment.ms": seg,
                "min.insync.replicas": "1",
            },
        ),
        # Signed audit checkpoints: tiny, rare, and the point is that they stay.
        # One partition keeps them in order; unlimited retention, no compaction
        # (every checkpoint matters, not only the latest per key).
        TopicSpec(
            topics.audit_checkpoints,
            1,
            {
                "cleanup.policy": "delete",
                "retention.ms": "-1",
                "retention.bytes": "-1",
                "min.insync.replicas": "1",
            },
        ),
    ]


def ensure_topics(bootstrap: str, specs: list[TopicSpec], replication: int = 1) -> list[str]:
    """Create missing topics (``replication`` replicas each: 1 on the local stack, 3 on a
    three-broker cluster) and bring configs of existing ones up to date.

    Returns the names created now. Idempotent.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="facegate-stack")
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for spec in specs:
            if spec.name in existing:
                admin.alter_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=spec.configs)]
                )
                continue
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, replication, topic_configs=spec.configs)],
                    validate_only=False,
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


def tune_transport_topics(
    bootstrap: str, topics: Topics, raw_retention_ms: list[int], dlq_retention_ms: list[int]
) -> tuple[int, int, int] | None:
    """Raw and dead-letter topics keep records no longer than the strictest policy asks
    (each tenant's ``transport``), with segment.ms a tenth of that (Kafka deletes whole
    closed segments). Returns (raw, dlq, segment) ms, or None without any policy.

    Used by ``facegate policy apply`` and the console's apply alike."""
    if not raw_retention_ms or not dlq_retention_ms:
        return None
    raw, dlq = min(raw_retention_ms), min(dlq_retention_ms)
    segment = max(10_000, min(raw, dlq) // 10)
    tuned = topics.model_copy(
        update={"raw_retention_ms": raw, "dlq_retention_ms": dlq, "segment_ms": segment}
    )
    ensure_topics(bootstrap, [s for s in topic_specs(tuned) if s.name in (topics.raw, topics.dlq)])
    return raw, dlq, segment

