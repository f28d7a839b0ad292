"""The one chaining writer of a multi-host audit log (``facegate audit writer``).

Every instance joins one consumer group on the one-partition facts topic; the
member assigned partition 0 is the writer, the others stand by and take over
on a rebalance. The writer chains each fact onto the head of the chain topic
and writes the entries and the facts' consumed offset in one Kafka
transaction (exactly once: a crash between the two redoes nothing twice).

Fencing: all instances share one ``transactional.id``. A new writer's
``init_transactions`` aborts whatever its predecessor left open and fences it,
so a writer that lost its assignment without noticing cannot commit; and each
batch starts only after checking the assignment. Readers still judge every
entry (``chain_topic.judge``), so even a forged double append is refused.

Once-only facts (``ONCE``: an erasure's completion, whose fact id is derived from its
request, ``log.Once``): a retried completion may publish its fact again, e.g. after
the writer was down and the worker's wait timed out. The writer chains the first and
skips any later fact of such a type whose id is already on the chain (read from the
chain at take-over, then kept as it chains), so one erasure has one completion entry.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import msgspec

from stream_processor.audit.chain_topic import ChainTopicReader
from stream_processor.audit.entries import GENESIS
from stream_processor.audit.errors import AuditError
from stream_processor.audit.facts import decode_fact
from stream_processor.audit.log import Head
from stream_processor.audit.once_index import ONCE_TYPES
from stream_processor.errors import BrokerError, InvalidInput

log = logging.getLogger(__name__)

GROUP = "facegate-audit-writer"
#: Entry types chained at most once per fact id (the appender's index has the same).
ONCE = ONCE_TYPES
TRANSACTIONAL_ID = "facegate-audit-writer"


@dataclass
class WriterStats:
    chained: int = 0
    refused: int = 0  # facts that are not valid facts, or carry identifiers: skipped
    fenced: int = 0  # batches a successor fenced: nothing of them was appended
    takeovers: int = 0
    repeated: int = 0  # once-only facts already on the chain: skipped


def chain_head(reader: ChainTopicReader) -> tuple[Head, int]:
    """The last committed entry of the chain topic (and the topic's end), reading only
    the tail: a window that doubles until it holds an entry (transaction markers and
    aborted records take offsets too)."""
    end = reader.end()
    window = 16
    while True:
        start = max(0, end - window)
        last = None
        for record in reader.read(start, end):
            last = record.entry
        if last is not None:
            return Head(last.seq, last.hash), end
        if start == 0:
            return Head(-1, GENESIS), end
        window *= 2


class ChainWriter:
    """Consumes facts, appends them to the chain; one instance of the group writes."""

    def __init__(
        self,
        bootstrap: str,
        facts_topic: str,
        chain_topic: str,
        auth: dict[str, Any] | None = None,
        group: str = GROUP,
        transactional_id: str = TRANSACTIONAL_ID,
        session_timeout_ms: int = 10_000,
    ) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        self._bootstrap = bootstrap
        self._chain_topic = chain_topic
        self._auth = auth or {}
        self._group = group
        self._transactional_id = transactional_id
        self._tp = TopicPartition(facts_topic, 0)
        self._producer: Any = None
        self._head = Head(-1, GENESIS)
        self._once: set[str] = set()  # ids of the once-only facts on the chain
        self.stats = WriterStats()
        try:
            self._consumer = KafkaConsumer(
                facts_topic,
                bootstrap_servers=bootstrap,
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                session_timeout_ms=session_timeout_ms,
                heartbeat_interval_ms=max(1000, session_timeout_ms // 5),
                client_id="facegate-audit-writer",
                **self._auth,
            )
            self._reader = ChainTopicReader(bootstrap, chain_topic, self._auth)
        except KafkaError as exc:
            raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc

    @property
    def active(self) -> bool:
        return self._producer is not None

    def run(self, stop: threading.Event) -> None:
        """Steps until ``stop``; a broker outage is waited out (nothing is appended
        meanwhile, and the next take-over re-reads the committed offset and head)."""
        from kafka.errors import KafkaError

        while not stop.is_set():
            try:
                self.step()
            except (KafkaError, BrokerError) as exc:
                log.warning("audit chain writer: Kafka unavailable (%s); retrying", exc)
                self._drop()
                stop.wait(1.0)

    def step(self, timeout_ms: int = 500) -> int:
        """One poll and, when this instance holds partition 0, one transaction. Returns
        the entries it chained."""
        batch = self._consumer.poll(timeout_ms=timeout_ms, max_records=500)
        if self._tp not in self._consumer.assignment():
            self._stand_by()
            return 0
        if self._producer is None:
            # Records polled before taking over are re-read from the committed offset.
            self._take_over()
            return 0
        records = batch.get(self._tp, [])
        if not records:
            return 0
        return self._append(records)

    def _take_over(self) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=self._bootstrap,
            transactional_id=self._transactional_id,
            acks="all",
            enable_idempotence=True,
            client_id="facegate-audit-writer",
            **self._auth,
        )
        producer.init_transactions()  # fences the previous writer, aborts its open batch
        committed = self._consumer.committed(self._tp)
        self._consumer.seek(self._tp, committed or 0)
        self._head, end = chain_head(self._reader)
        # The whole chain is read once per take-over; only the rare once-only ids are kept.
        self._once = {r.fact_id for r in self._reader.read(0, end) if r.entry.type in ONCE}
        self._producer = producer
        self.stats.takeovers += 1
        log.info("audit chain writer: took over at entry %d", self._head.seq)

    def _stand_by(self) -> None:
        if self._producer is not None:
            log.info("audit chain writer: lost partition 0, standing by")
            self._producer.close(timeout=5)
            self._producer = None

    def _append(self, records: list[Any]) -> int:
        from kafka.errors import InvalidProducerEpochError, KafkaError, ProducerFencedError
        from kafka.structs import OffsetAndMetadata

        head = self._head
        producer = self._producer
        once = set(self._once)
        try:
            producer.begin_transaction()
            chained = repeated = 0
            for rec in records:
                entry = self._chain(rec.value, head)
                if entry is None:
                    continue
                fact_id = (rec.key or b"").decode(errors="replace")
                if entry.type in ONCE:
                    if fact_id in once:
                        repeated += 1
                        continue
                    once.add(fact_id)
                producer.send(self._chain_topic, key=rec.key, value=entry.line(), partition=0)
                head = Head(entry.seq, entry.hash)
                chained += 1
            done = {self._tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)}
            producer.send_offsets_to_transaction(done, self._group)
            producer.commit_transaction()
        except KafkaError as exc:
            # A successor's init_transactions bumped the epoch: this writer is a zombie.
            self.stats.fenced += isinstance(exc, ProducerFencedError | InvalidProducerEpochError)
            log.warning("audit chain writer: batch not committed (%s); re-reading", exc)
            self._drop()
            return 0
        self._head = head
        self._once = once
        self.stats.chained += chained
        self.stats.repeated += repeated
        if repeated:
            log.info("audit chain writer: %d once-only facts already chained: skipped", repeated)
        return chained

    def _chain(self, raw: bytes | None, head: Head) -> Any:
        try:
            return decode_fact(raw or b"").chained(head.seq + 1, head.hash)
        except (msgspec.DecodeError, msgspec.ValidationError, AuditError, InvalidInput) as exc:
            # A refused fact is skipped (its content may identify someone: not logged).
            self.stats.refused += 1
            log.warning("audit chain writer: fact refused: %s", type(exc).__name__)
            return None

    def _drop(self) -> None:
        """After a failed batch: close the producer; the next step takes over afresh
        (re-reading the committed offset and the chain's head) if still assigned."""
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    def close(self) -> None:
        self._stand_by()
        self._consumer.close()
        self._reader.close()
