"""Follows a whole topic from its start on a thread of its own, for a process's read-only
views (the web's device table, its policy retention): every record goes through
``quarantine.guard_blocking``, and a lost broker is reconnected with back-off where the
thread used to end.

The view's ``take(record)`` returns a ``Refusal`` for a record it cannot use; that record
is dead-lettered with its coordinates and counted, and the view keeps what it had. After
a reconnect the tail goes on from the offsets it had reached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

from stream_processor.quarantine import (
    BlockingDeadLetterSink,
    Coordinates,
    Quarantine,
    Refusal,
    guard_blocking,
)

log = logging.getLogger(__name__)

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class TailRecord:
    at: Coordinates
    key: bytes | None
    value: bytes | None
    #: The record's Kafka timestamp (for the bridge's topics: when the bridge took it).
    timestamp_ms: int


class _Stopped(Exception):
    """Raised out of a wait when the tail is told to stop."""


def kafka_consumer(
    bootstrap: str, client_id: str, auth: Mapping[str, Any] | None = None
) -> Callable[[], Any]:
    """The production ``connect``: a kafka-python consumer without a group, logged in
    with ``auth`` (the reading role's kafka-python login, runtime/kafka_auth)."""
    login = dict(auth or {})

    def connect() -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, client_id=client_id, **login
        )

    return connect


def seek_each(consumer: Any, tps: list[Any], position: Callable[[Any], int | None]) -> None:
    """Put each assigned partition at the offset ``position`` gives it, or at its start."""
    for tp in tps:
        at = position(tp)
        if at is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, at)


class TopicTail:
    def __init__(
        self,
        topic: str,
        take: Callable[[TailRecord], Refusal | None],
        quarantine: Quarantine,
        dead_letters: BlockingDeadLetterSink,
        connect: Callable[[], Any],
        poll_ms: int = 200,
    ) -> None:
        self.topic = topic
        self._take = take
        self._quarantine = quarantine
        self._dead_letters = dead_letters
        self._connect = connect
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._positions: dict[int, int] = {}
        self._thread: threading.Thread | None = None

    def start(self, name: str) -> TopicTail:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def wait_caught_up(self, timeout_s: float) -> bool:
        """True once every record that existed at the (first) start has been taken."""
        return self._caught_up.wait(timeout_s)

    def _nap(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def _run(self) -> None:
        attempts = self._quarantine.attempts()
        while not self._stop.is_set():
            try:
                self._follow(attempts.done)
            except _Stopped:
                return
            except Exception as exc:  # noqa: BLE001 - a view must outlive its broker
                wait = attempts.after(exc)
                if isinstance(wait, Refusal):  # not a broker error: a bug; still go on
                    log.error("%s: following %s failed (%s)", self._quarantine.consumer,
                              self.topic, type(exc).__name__)  # fmt: skip
                    attempts = self._quarantine.attempts()
                    wait = self._quarantine.backoff.max_s
                if self._stop.wait(wait):
                    return

    def _follow(self, connected: Callable[[], None]) -> None:
        from kafka import TopicPartition

        consumer = self._connect()
        try:
            # kafka-python answers an empty set (not None) for a topic not created yet.
            partitions = consumer.partitions_for_topic(self.topic)
            while not partitions:
                self._nap(1.0)
                partitions = consumer.partitions_for_topic(self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            seek_each(consumer, tps, lambda tp: self._positions.get(tp.partition))
            end = consumer.end_offsets(tps)
            connected()
            while not self._stop.is_set():
                for tp, records in consumer.poll(timeout_ms=self._poll_ms).items():
                    for r in records:
                        self._one(TailRecord(Coordinates(tp.topic, tp.partition, r.offset),
                                             r.key, r.value, r.timestamp))  # fmt: skip
                if not self._caught_up.is_set() and all(
                    consumer.position(tp) >= end[tp] for tp in tps
                ):
                    self._caught_up.set()
        finally:
            consumer.close()

    def _one(self, record: TailRecord) -> None:
        guard_blocking(lambda: self._take(record), record.value, record.at,
                       self._quarantine, self._dead_letters, self._nap)  # fmt: skip
        self._positions[record.at.partition] = record.at.offset + 1


class ViewFollower(Generic[V]):
    """Follows one topic from its start into a process's ``view`` on a daemon thread:
    ``take`` each record (a ``Refusal`` is dead-lettered), as ``client_id``."""

    client_id: ClassVar[str]
    thread_name: ClassVar[str]

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        view: V,
        quarantine: Quarantine,
        dead_letters: BlockingDeadLetterSink,
        auth: Mapping[str, Any] | None = None,
    ) -> None:
        self.view = view
        self._tail = TopicTail(topic, self.take, quarantine, dead_letters,
                               kafka_consumer(bootstrap, self.client_id, auth))  # fmt: skip

    def take(self, record: TailRecord) -> Refusal | None:
        raise NotImplementedError

    def start(self) -> Self:
        self._tail.start(self.thread_name)
        return self

    def stop(self) -> None:
        self._tail.stop()
