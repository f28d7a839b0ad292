"""Wait until a broker serves new topics: CreateTopics answers once the controller
holds a topic, and each broker serves it only after applying that metadata. A process
started in between (a worker right after ``facegate stack up``) is told the topic does
not exist; on a loaded machine that window lasts seconds."""

from __future__ import annotations

import time
from typing import Any

from stream_processor.errors import BrokerError

SERVED_TIMEOUT_S = 60.0


def leaderless(described: list[dict[str, Any]], names: list[str]) -> dict[str, str]:
    """Of ``names``, those not yet served, each with what the metadata says of it."""
    seen = {t["topic"]: t for t in described}
    pending: dict[str, str] = {}
    for name in names:
        topic = seen.get(name)
        if topic is None or topic["error_code"] or not topic["partitions"]:
            pending[name] = "unknown" if topic is None else f"error {topic['error_code']}"
            continue
        without = [p["partition"] for p in topic["partitions"] if p["leader"] < 0]
        if without:
            pending[name] = f"no leader for partitions {without}"
    return pending


def wait_served(admin: Any, names: list[str], timeout_s: float = SERVED_TIMEOUT_S) -> None:
    """Return once the metadata shows a leader for every partition of ``names``; after
    ``timeout_s`` raise a BrokerError naming each topic with what the metadata says."""
    from kafka.errors import KafkaError

    if not names:
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pending = leaderless(admin.describe_topics(names), names)
        except KafkaError as exc:  # a broker still loading its metadata
            pending = {"(describe failed)": repr(exc)}
        if not pending:
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"after {timeout_s:.0f}s Kafka still shows topics without a leader for"
                f" every partition: {pending}; check that a majority of brokers run"
                " (facegate stack status)"
            )
        time.sleep(0.1)
