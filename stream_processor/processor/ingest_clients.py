"""The ingest loop's two Kafka clients: the raw consumer, and a reader of the
ledgers' end offsets for the ledger gate, kept apart.

A broker answers the requests of one connection strictly in turn, and the raw
consumer keeps a fetch long-poll (up to ``fetch_max_wait_ms``, 500 ms) outstanding on
its connection to each leader of its partitions. Asked through that consumer, a
ListOffsets for a ledger waits behind the long-poll to the ledger's leader until
raw records arrive there or the poll times out: on a cluster of several nodes that
was nearly the whole poll on every batch (docs/benchmarks.md, processor on three
nodes). The reader never fetches, so its requests are answered at once.

Nothing else changes for the gate: the offsets are still read after the batch was
fetched, and are the high watermarks, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_processor.processor.settings import ProcessorSettings
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings
from stream_processor.runtime.workers import AIOKAFKA_CONSUMER_TIMEOUTS


class OffsetsClient(Protocol):
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...


def raw_consumer(stack: BrokerSettings, settings: ProcessorSettings, raw: str) -> AIOKafkaConsumer:
    """The worker's consumer of the raw topic ``raw``, in the worker's group."""
    return AIOKafkaConsumer(
        raw,
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=f"{settings.app_id}.raw",
        client_id=f"{settings.app_id}-{settings.worker_name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.batch_size,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        **AIOKAFKA_CONSUMER_TIMEOUTS,
        **kafka_python_auth(stack, Role.PROCESSOR),  # aiokafka takes the same names
    )


def ends_client(bootstrap: str, client_id: str, auth: Mapping[str, Any]) -> AIOKafkaConsumer:
    """A consumer in no group, assigned nothing: it only ever reads end offsets.
    ``auth``: the worker's login (``kafka_python_auth``)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        **AIOKAFKA_CONSUMER_TIMEOUTS,
        **auth,
    )


class LedgerEnds:
    """``EndOffsets`` of the gate: end offset per partition of a ledger topic."""

    def __init__(self, client: OffsetsClient, partitions: Mapping[str, Sequence[int]]) -> None:
        """``partitions`` per ledger topic; it may be filled after construction (the
        views learn them when they open, before the first batch)."""
        self._client = client
        self._partitions = partitions

    async def __call__(self, topic: str) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in self._partitions[topic]]
        return {tp.partition: end for tp, end in (await self._client.end_offsets(tps)).items()}
