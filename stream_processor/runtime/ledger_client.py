"""Reading and writing the compacted ledgers outside the workers' tables: the CLI, the web
app and a worker's start-up (kafka-python, synchronous)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stream_processor.errors import BrokerError
from stream_processor.runtime.kafka_auth import check_login

#: kafka-python login settings of the caller's role (runtime/kafka_auth.kafka_python_auth);
#: empty with Kafka authentication off.
Auth = Mapping[str, Any]


def read_ledger(
    bootstrap: str, topic: str, timeout_s: float = 30.0, auth: Auth | None = None
) -> dict[bytes, bytes]:
    """The current state of a compacted topic: latest value per key, tombstones applied.

    Reads every partition from the beginning to the end offsets seen at the start.
    """
    return read_ledger_at(bootstrap, topic, timeout_s, auth)[0]


def read_ledger_at(
    bootstrap: str, topic: str, timeout_s: float = 120.0, auth: Auth | None = None
) -> tuple[dict[bytes, bytes], dict[int, int]]:
    """``read_ledger`` plus the end offset per partition it read up to."""
    state: dict[bytes, bytes] = {}

    def apply(key: bytes, value: bytes | None) -> None:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value

    reader = LedgerReader(
        bootstrap, topic, "facegate-cli", timeout_s, consumer_timeout_ms=1000, **(auth or {})
    )
    try:
        return state, reader.catch_up(apply)
    finally:
        reader.close()


#: Where a ledger value was read: (partition, offset, value).
Located = tuple[int, int, bytes]


def read_ledger_located(
    bootstrap: str, topic: str, timeout_s: float = 30.0, auth: Auth | None = None
) -> dict[bytes, Located]:
    """``read_ledger`` with the partition and offset of each latest value, so a reader
    can name a record it cannot decode without quoting it."""
    state: dict[bytes, Located] = {}

    def apply(key: bytes, value: bytes | None, partition: int, offset: int) -> None:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = (partition, offset, value)

    reader = LedgerReader(
        bootstrap, topic, "facegate-cli", timeout_s, consumer_timeout_ms=1000, **(auth or {})
    )
    try:
        reader.catch_up_located(apply)
        return state
    finally:
        reader.close()


class LedgerReader:
    """One consumer over every partition of a compacted topic, from its beginning.

    ``catch_up`` hands every keyed record written up to the end offsets as of the
    call to ``apply`` (``None`` for a tombstone), so a caller that keeps the
    reader reads only what was written since its last call.
    """

    def __init__(
        self, bootstrap: str, topic: str, client_id: str, timeout_s: float, **options: Any
    ) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        check_login(bootstrap, options)
        self.topic = topic
        self._timeout_s = timeout_s
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap, enable_auto_commit=False, client_id=client_id,
                **options,
            )  # fmt: skip
        except KafkaError as exc:
            raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
        # None or empty, depending on whether the broker has ever heard of the name.
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            self._consumer.close()
            raise BrokerError(f"topic {topic} does not exist; run: facegate stack up")
        self._tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._tps)
        self._consumer.seek_to_beginning(*self._tps)

    def catch_up(self, apply: Callable[[bytes, bytes | None], None]) -> dict[int, int]:
        """Read to the end offsets as of now; returns them per partition."""
        return self.catch_up_located(lambda key, value, _p, _o: apply(key, value))

    def catch_up_located(
        self, apply: Callable[[bytes, bytes | None, int, int], None]
    ) -> dict[int, int]:
        """``catch_up``, handing ``apply`` each record's partition and offset too."""
        import time

        from kafka.errors import KafkaError

        c = self._consumer
        try:
            end = c.end_offsets(self._tps)
            deadline = time.monotonic() + self._timeout_s
            while any(c.position(tp) < end[tp] for tp in self._tps):
                if time.monotonic() > deadline:
                    raise BrokerError(f"reading {self.topic} timed out")
                for records in c.poll(timeout_ms=200).values():
                    for r in records:
                        if r.key is not None:
                            apply(r.key, r.value, r.partition, r.offset)
        except KafkaError as exc:
            raise BrokerError(f"reading {self.topic} failed: {exc}") from exc
        return {tp.partition: int(off) for tp, off in end.items()}

    def close(self) -> None:
        self._consumer.close()


def write_records(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes, bytes | None]],
    auth: Auth | None = None,
) -> int:
    """Produce with acks=all and wait for every record; ``None`` is a tombstone."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    check_login(bootstrap, auth or {})
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", client_id="facegate-cli", linger_ms=5,
            **(auth or {}),
        )  # fmt: skip
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


def end_offsets(bootstrap: str, topic: str, auth: Auth | None = None) -> dict[int, int]:
    """The next offset to be written, per partition (0 for an empty partition)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    check_login(bootstrap, auth or {})
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, client_id="facegate-offsets", **(auth or {})
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        return {tp.partition: int(off) for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
