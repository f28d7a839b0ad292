"""The audit log of a multi-host deployment (``FACEGATE_AUDIT_MODE=topic``).

Appending publishes a fact and waits for the one chaining writer to chain it:
the call returns the entry as it stands in the one chain, or raises
``ChainUnavailable`` (no entry is half-made: a receipt is built only from an
entry that came back). Reading works on this host's copy of the chain, the
same JSONL file as in the single-host mode, kept up to date from the chain
topic (``sync``): the tree, checkpoints, receipts and ``audit verify`` read it
unchanged. The copy's position in the topic is kept beside it, and every
entry is judged before it joins (``chain_topic.judge``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from stream_processor.audit.canonical import canonical
from stream_processor.audit.chain_topic import ChainTopicReader, Verdict, judge
from stream_processor.audit.entries import AuditEntry, EntryType
from stream_processor.audit.errors import AuditError, ChainFork
from stream_processor.audit.facts import AuditFact, new_fact
from stream_processor.audit.log import (
    Appended,
    FileAuditLog,
    Head,
    Once,
    committed,
    same_fact,
)
from stream_processor.audit.openings import Openings
from stream_processor.errors import BrokerError

log = logging.getLogger(__name__)


class FactPublisher(Protocol):
    """The port: where facts go (``KafkaFactPublisher`` in production)."""

    def publish(self, fact: AuditFact) -> None: ...

    def close(self) -> None: ...


class TopicAuditLog(FileAuditLog):
    """``FileAuditLog`` whose file is a verified copy of the chain topic."""

    def __init__(
        self,
        path: Path,
        reader: ChainTopicReader,
        publisher: FactPublisher,
        openings: Openings | None = None,
        clock: Callable[[], float] = time.time,
        wait_s: float = 10.0,
    ) -> None:
        super().__init__(path, openings=openings, clock=clock)
        self._reader = reader
        self._publisher = publisher
        self._wait_s = wait_s
        self.refused = 0  # repeated entries (a stale writer's double appends) skipped
        # One Kafka reader per process: the web app's threads take turns with it.
        self._lock = threading.RLock()
        #: Facts published whose entries did not come back in time, by what they say.
        self._pending: dict[bytes, tuple[AuditFact, str | None, int]] = {}

    @property
    def position_path(self) -> Path:
        return self.path.with_name(self.path.name + ".chain-offset")

    def sync(self) -> Head:
        """Bring this host's copy up to the chain topic's last committed entry."""
        with self._lock:
            end = self._reader.end()
            return self.extend(lambda head: self._pull(head, end))

    def keep_synced(self, interval_s: float = 1.0) -> threading.Event:
        """Sync in a daemon thread every ``interval_s`` (for readers that serve the file
        itself, like the web app's /audit/log.jsonl); set the returned event to stop.
        An outage is retried; a fork stops the thread, leaving the last verified copy."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval_s):
                try:
                    self.sync()
                except ChainFork:
                    log.exception("audit chain: fork; this host's copy stays as it was")
                    return
                except BrokerError as exc:
                    log.warning("audit chain: copy not synced (%s); retrying", exc)

        threading.Thread(target=loop, name="audit-chain-sync", daemon=True).start()
        return stop

    def _pull(self, head: Head, end: int) -> Iterator[AuditEntry]:
        start = self._position()
        for record in self._reader.read(start, end):
            verdict = judge(head, record.entry)
            if verdict is Verdict.FORK:
                raise ChainFork(
                    f"{self._reader.topic} offset {record.offset}: entry {record.entry.seq} does"
                    f" not extend this host's log (head {head.seq}); refusing to merge"
                )
            if verdict is Verdict.REPEAT:
                self.refused += 1
                log.warning(
                    "%s offset %d repeats entry %d (a stale writer?): refused",
                    self._reader.topic, record.offset, record.entry.seq,
                )
            else:
                head = Head(record.entry.seq, record.entry.hash)
                yield record.entry
        if end > start:
            self.position_path.write_text(str(end))

    def _position(self) -> int:
        try:
            return int(self.position_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def append(
        self,
        type: EntryType,
        *,
        tenant: str | None,
        site: str | None,
        body: dict[str, Any],
        subject: str | None = None,
        once: Once | None = None,
    ) -> Appended:
        key = canonical([str(type), tenant, site, subject, body])
        with self._lock:
            # A retry of an append that timed out waits for the same fact (it may have
            # been chained meanwhile) instead of publishing it a second time.
            pending = self._pending.get(key)
            if pending is None:
                salt, commitment = committed(subject, once)
                start = self._reader.end()
                self.sync()
                earlier = self.logged(type, tenant, site, commitment, body) if once else None
                if earlier is not None:  # chained by an earlier attempt (any process)
                    return self._opened(earlier, subject, salt)
                fact = self._publish(type, tenant, site, commitment, body, once)
                pending = self._pending[key] = (fact, salt, start)
            fact, salt, start = pending
            commitment = fact.subject
            record = self._reader.find(fact.id, start, self._wait_s)
            del self._pending[key]
            self.sync()
        if not same_fact(record.entry, type, tenant, site, commitment, body):
            raise AuditError(f"fact {fact.id} was chained with other content (a forged fact?)")
        return self._opened(record.entry, subject, salt)

    def _opened(self, entry: AuditEntry, subject: str | None, salt: str | None) -> Appended:
        if subject is not None and salt is not None and self._openings is not None:
            self._openings.put(entry.seq, subject, salt)
        return Appended(entry, salt)

    def _publish(
        self,
        type: EntryType,
        tenant: str | None,
        site: str | None,
        commitment: str | None,
        body: dict[str, Any],
        once: Once | None,
    ) -> AuditFact:
        fact = new_fact(
            type,
            at_ms=int(self._clock() * 1000),
            tenant=tenant,
            site=site,
            subject=commitment,
            body=body,
            id=once.fact_id if once is not None else None,
        )
        # Refuse here what the writer would refuse, so the caller hears why.
        fact.chained(0, "0" * 64)
        self._publisher.publish(fact)
        return fact

    def head(self) -> Head:
        return self.sync()

    def entries(self) -> Iterator[AuditEntry]:
        self.sync()
        return super().entries()

    def close(self) -> None:
        self._reader.close()
        self._publisher.close()
