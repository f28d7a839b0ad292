"""The live keys of the consent ledger, followed incrementally (kafka-python, one thread).

An erasure tombstones every ledger record of its subject, so it needs the keys
in force now. Reading the compacted topic from the start for each erasure costs
a connection and a full scan; this keeps one consumer and a set of live keys,
and before each answer reads only what was written since (up to the end offsets
as of the call, so the answer includes every record written before it).
"""

from __future__ import annotations

import time
from typing import Any

from stream_processor.errors import BrokerError


class LedgerIndex:
    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout_s = timeout_s
        self._consumer: Any = None
        self._tps: list[Any] = []
        self._live: set[bytes] = set()

    def _open(self) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                client_id="facegate-erasure-ledger",
                fetch_max_wait_ms=50,
            )
        except KafkaError as exc:
            raise BrokerError(f"cannot reach Kafka at {self._bootstrap}: {exc}") from exc
        partitions = consumer.partitions_for_topic(self._topic)
        if partitions is None:
            consumer.close()
            raise BrokerError(f"topic {self._topic} does not exist; run: facegate stack up")
        self._tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(self._tps)
        consumer.seek_to_beginning(*self._tps)
        self._consumer = consumer

    def keys(self) -> set[bytes]:
        """Every key with a live (non-tombstoned) record, as of now."""
        from kafka.errors import KafkaError

        if self._consumer is None:
            self._open()
        c = self._consumer
        try:
            end = c.end_offsets(self._tps)
            deadline = time.monotonic() + self._timeout_s
            while any(c.position(tp) < end[tp] for tp in self._tps):
                if time.monotonic() > deadline:
                    raise BrokerError(f"reading {self._topic} timed out")
                for records in c.poll(timeout_ms=200).values():
                    for r in records:
                        if r.key is None:
                            continue
                        if r.value is None:
                            self._live.discard(r.key)
                        else:
                            self._live.add(r.key)
        except KafkaError as exc:
            self.close()  # start over next time: the set may be half-updated
            self._live = set()
            raise BrokerError(f"reading {self._topic} failed: {exc}") from exc
        return set(self._live)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
