"""Kafka topics the project creates explicitly, with their configs (auto-create is off)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stream_processor.errors import BrokerError
from stream_processor.settings import Topics


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


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


def ensure_topics(bootstrap: str, specs: list[TopicSpec]) -> list[str]:
    """Create missing topics and bring configs of existing ones up to date.

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
                    [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.configs)],
                    validate_only=False,
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created
