"""Reading the one audit chain from its Kafka topic (multi-host mode).

The chain topic has one partition; each record is one entry (value: its
canonical line, key: the id of the fact it chains). Only the chaining writer
may write it (ACLs), in transactions, and readers see committed records only.
Still, a reader trusts nothing: an entry joins its copy of the log only when
it is exactly the next one (``seq`` one more, ``prev`` the head's hash, its
own hash right). A stale writer's double append repeats a ``seq`` and is
refused; anything else that does not link is a fork, and stops the reader.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from stream_processor.audit.entries import AuditEntry, decode_entry
from stream_processor.audit.errors import ChainFork, ChainUnavailable
from stream_processor.audit.log import Head
from stream_processor.errors import BrokerError

log = logging.getLogger(__name__)


class Verdict(enum.StrEnum):
    NEXT = "next"  # links to the head: append it
    REPEAT = "repeat"  # a seq already in the log (a stale writer's double append): skip
    FORK = "fork"  # does not link: the chain is not one chain


def judge(head: Head, entry: AuditEntry) -> Verdict:
    """Where ``entry`` stands relative to the log that ends at ``head``."""
    if entry.seq <= head.seq:
        return Verdict.REPEAT
    linked = entry.seq == head.seq + 1 and entry.prev == head.hash
    if linked and entry.computed_hash() == entry.hash:
        return Verdict.NEXT
    return Verdict.FORK


@dataclass(frozen=True)
class ChainRecord:
    offset: int
    fact_id: str
    entry: AuditEntry


class ChainTopicReader:
    """Reads committed chain records (kafka-python, no consumer group: every host reads all)."""

    def __init__(
        self, bootstrap: str, topic: str, auth: dict[str, Any] | None = None
    ) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        self.topic = topic
        self._tp = TopicPartition(topic, 0)
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                enable_auto_commit=False,
                isolation_level="read_committed",
                client_id="facegate-audit-chain",
                **(auth or {}),
            )
            self._consumer.assign([self._tp])
        except KafkaError as exc:
            raise BrokerError(f"cannot read the audit chain at {bootstrap}: {exc}") from exc

    def end(self) -> int:
        """The offset after the last committed record (the last stable offset)."""
        from kafka.errors import KafkaError

        try:
            return int(self._consumer.end_offsets([self._tp])[self._tp])
        except KafkaError as exc:
            raise BrokerError(f"cannot read the end of {self.topic}: {exc}") from exc

    def read(self, start: int, end: int, timeout_s: float = 30.0) -> Iterator[ChainRecord]:
        """Records from ``start`` up to ``end`` (exclusive), in order."""
        from kafka.errors import KafkaError

        if start >= end:
            return
        deadline = time.monotonic() + timeout_s
        try:
            self._consumer.seek(self._tp, start)
            while self._consumer.position(self._tp) < end:
                if time.monotonic() > deadline:
                    raise ChainUnavailable(f"{self.topic}: offsets {start}..{end} not read in time")
                batch = self._consumer.poll(timeout_ms=200).get(self._tp, [])
                for rec in batch:
                    if rec.offset >= end:
                        return
                    yield ChainRecord(rec.offset, _key(rec.key), _entry(rec.value, rec.offset))
        except KafkaError as exc:
            raise BrokerError(f"cannot read {self.topic}: {exc}") from exc

    def find(self, fact_id: str, start: int, timeout_s: float) -> ChainRecord:
        """Waits for the entry that chains fact ``fact_id`` (published after ``start``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            end = self.end()
            for record in self.read(start, end, timeout_s=max(1.0, deadline - time.monotonic())):
                if record.fact_id == fact_id:
                    return record
            start = max(start, end)
            if time.monotonic() > deadline:
                raise ChainUnavailable(
                    f"the audit fact {fact_id} was not chained within {timeout_s:g} s: is "
                    "'facegate audit writer' running and Kafka reachable?"
                )
            time.sleep(0.05)

    def close(self) -> None:
        self._consumer.close()


def _key(raw: bytes | None) -> str:
    return raw.decode("ascii", "replace") if raw else ""


def _entry(raw: bytes | None, offset: int) -> AuditEntry:
    try:
        return decode_entry(raw or b"")
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # Only the writer may write this topic: an unreadable record is a broken log.
        raise ChainFork(f"chain record at offset {offset} is not an entry: {exc}") from exc
