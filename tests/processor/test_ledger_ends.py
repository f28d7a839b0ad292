"""The ledger gate reads the ledgers' end offsets on a client of its own
(``processor/ingest_clients.py``): a consumer's fetch long-poll must not hold them.

A broker answers one connection's requests in turn: asked through a consumer that
long-polls an idle topic on the same broker, a ListOffsets waits for the poll
(the cause of a ~1 s publish → stored latency on three Kafka nodes). The real broker
shows both: the ingest consumer's answer is late, the gate's reader's is not, and
both give the same offsets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_processor.processor.ingest_clients import LedgerEnds, ends_client
from tests.support.kafka import kafka_kwargs, login_kwargs, producer
from tests.support.records import private_topics

#: Long enough to stand well above a loaded machine's round trip.
LONG_POLL_MS = 2_000


class FakeClient:
    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends
        self.asked: list[list[TopicPartition]] = []

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked.append(partitions)
        return {tp: self.ends[tp] for tp in partitions}


def test_ends_are_per_partition_of_the_partitions_learnt_after_construction() -> None:
    client = FakeClient({TopicPartition("c", 0): 7, TopicPartition("c", 1): 0})
    partitions: dict[str, list[int]] = {}
    ends = LedgerEnds(client, partitions)
    partitions["c"] = [0, 1]  # the views open after the gate is built
    assert asyncio.run(ends("c")) == {0: 7, 1: 0}
    assert client.asked == [[TopicPartition("c", 0), TopicPartition("c", 1)]]


async def _timed_reads(read: Any, n: int) -> tuple[list[float], Any]:
    """How long each of ``n`` reads took, and what the last one read."""
    took, got = [], None
    for _ in range(n):
        t = time.monotonic()
        got = await read()
        took.append(time.monotonic() - t)
    return took, got


def test_a_long_poll_on_the_same_broker_delays_the_consumer_not_the_gates_reader(
    running_stack: Any,
) -> None:
    topics = private_topics(running_stack.settings().kafka_bootstrap, "raw", "consent")
    p = producer(running_stack, acks="all")
    for i in range(3):
        p.send(topics.consent, key=b"k%d" % i, value=b"v")
    p.flush()
    p.close()
    ledger = TopicPartition(topics.consent, 0)

    async def go() -> tuple[list[float], list[float], dict[int, int], dict[int, int]]:
        ingest = AIOKafkaConsumer(
            **kafka_kwargs(running_stack), fetch_max_wait_ms=LONG_POLL_MS, group_id=None
        )
        bootstrap = running_stack.settings().kafka_bootstrap
        reader = ends_client(bootstrap, "test-ledger-ends", login_kwargs(running_stack))
        await ingest.start()
        await reader.start()

        async def poll() -> None:  # the ingest loop: an idle raw topic, long-polled
            while True:
                await ingest.getmany(timeout_ms=LONG_POLL_MS)

        ingest.assign([TopicPartition(topics.raw, 0)])
        polling = asyncio.ensure_future(poll())
        try:
            await asyncio.sleep(1.0)  # the first long-poll is out
            gate_ends = LedgerEnds(reader, {topics.consent: [0]})
            await gate_ends(topics.consent)  # its connection to the leader is made
            fast, read = await _timed_reads(lambda: gate_ends(topics.consent), 3)
            slow, via_ingest = await _timed_reads(lambda: ingest.end_offsets([ledger]), 2)
            return fast, slow, read, {tp.partition: e for tp, e in via_ingest.items()}
        finally:
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
            await reader.stop()
            await ingest.stop()

    fast, slow, read, via_ingest = asyncio.run(go())
    assert read == via_ingest == {0: 3}
    # The first read also waits for its metadata; the second for a whole poll just sent.
    assert min(slow) >= LONG_POLL_MS / 1000 / 2, slow
    assert max(fast) < LONG_POLL_MS / 1000 / 4, fast
