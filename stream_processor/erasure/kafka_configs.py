"""Reads the configs of the topics that may hold a copy naming a subject (kafka-python admin)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stream_processor.erasure.plan import TopicRetention
from stream_processor.errors import BrokerError

log = logging.getLogger(__name__)

_WANTED = (
    "cleanup.policy",
    "retention.ms",
    "segment.ms",
    "max.compaction.lag.ms",
    "delete.retention.ms",
)


def describe_topics(
    bootstrap: str, topics: Sequence[str], auth: Mapping[str, Any] | None = None
) -> list[TopicRetention]:
    """The configs in force on the broker for those of ``topics`` that exist."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="facegate-erasure", **(auth or {})
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        names = [t for t in dict.fromkeys(topics) if t in existing]
        if not names:
            return []
        responses = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in names]
        )
        out: list[TopicRetention] = []
        for response in responses:
            for resource in response.resources:
                # (error_code, error_message, resource_type, resource_name, config_entries)
                name, entries = resource[3], resource[4]
                configs = {e[0]: e[1] for e in entries if e[0] in _WANTED and e[1] is not None}
                out.append(TopicRetention.from_configs(name, configs))
        return out
    except KafkaError as exc:
        raise BrokerError(f"describing topics failed: {exc}") from exc
    finally:
        admin.close()


def cached(
    read: Callable[[], list[TopicRetention]],
    ttl_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], list[TopicRetention]]:
    """``read`` at most every ``ttl_s``; on a broker error the last answer is reused."""
    state: dict[str, tuple[float, list[TopicRetention]]] = {}

    def get() -> list[TopicRetention]:
        hit = state.get("v")
        if hit is not None and clock() - hit[0] < ttl_s:
            return hit[1]
        try:
            value = read()
        except BrokerError as exc:
            if hit is None:
                raise
            log.warning("topic configs not refreshed (%s); using those read before", exc)
            return hit[1]
        state["v"] = (clock(), value)
        return value

    return get
