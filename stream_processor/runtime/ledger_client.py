"""Reading and writing the compacted ledgers outside the workers' tables: the CLI, the web
app and a worker's start-up (kafka-python, synchronous)."""

from __future__ import annotations

from collections.abc import Iterable

from stream_processor.errors import BrokerError


def read_ledger(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[bytes, bytes]:
    """The current state of a compacted topic: latest value per key, tombstones applied.

    Reads every partition from the beginning to the end offsets seen at the start.
    """
    return read_ledger_at(bootstrap, topic, timeout_s)[0]


def read_ledger_at(
    bootstrap: str, topic: str, timeout_s: float = 120.0
) -> tuple[dict[bytes, bytes], dict[int, int]]:
    """``read_ledger`` plus the end offset per partition it read up to."""
    import time

    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            client_id="facegate-cli",
            consumer_timeout_ms=1000,
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            raise BrokerError(f"topic {topic} does not exist; run: facegate stack up")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        state: dict[bytes, bytes] = {}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise BrokerError(f"reading {topic} timed out")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    if r.key is None:
                        continue
                    if r.value is None:
                        state.pop(r.key, None)
                    else:
                        state[r.key] = r.value
        return state, {tp.partition: int(off) for tp, off in end.items()}
    finally:
        consumer.close()


def write_records(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes | None]]) -> int:
    """Produce with acks=all and wait for every record; ``None`` is a tombstone."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", client_id="facegate-cli", linger_ms=5
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in records]
        producer.flush(30)
        for f in futures:
            f.get(timeout=30)
        return len(futures)
    except KafkaError as exc:
        raise BrokerError(f"writing to {topic} failed: {exc}") from exc
    finally:
        producer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset to be written, per partition (0 for an empty partition)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="facegate-offsets")
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        return {tp.partition: int(off) for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
