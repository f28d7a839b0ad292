"""Fixtures of the multi-host audit chain tests: a pair of private topics on the suite's
Kafka, hosts (each a ``TopicAuditLog`` with its own copy), chaining writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stream_processor.audit.chain_topic import ChainTopicReader
from stream_processor.audit.chain_writer import ChainWriter
from stream_processor.audit.facts import KafkaFactPublisher
from stream_processor.audit.openings import OpeningStore
from stream_processor.audit.settings import AuditPaths
from stream_processor.audit.topic_log import TopicAuditLog
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import ensure_topics, topic_specs
from tests.conftest import StackHandle
from tests.support.kafka import login_kwargs


@dataclass
class Chain:
    bootstrap: str
    topics: Topics
    tag: str
    tmp: Path
    #: The test's clients are the operator: they log in as admin when the suite's
    #: Kafka requires logins (tests/support/kafka.py).
    auth: dict[str, Any] = field(default_factory=dict)
    opened: list[TopicAuditLog] = field(default_factory=list)
    writers: list[ChainWriter] = field(default_factory=list)

    def host(self, name: str, wait_s: float = 20.0) -> TopicAuditLog:
        paths = AuditPaths.of(self.tmp / name)
        log = TopicAuditLog(
            paths.log,
            ChainTopicReader(self.bootstrap, self.topics.audit_chain, self.auth),
            KafkaFactPublisher(self.bootstrap, self.topics.audit_facts, self.auth),
            openings=OpeningStore(paths.openings),
            wait_s=wait_s,
        )
        self.opened.append(log)
        return log

    def writer(self) -> ChainWriter:
        w = ChainWriter(
            self.bootstrap,
            self.topics.audit_facts,
            self.topics.audit_chain,
            auth=self.auth,
            group=f"w-{self.tag}",
            transactional_id=f"w-{self.tag}",
            session_timeout_ms=6000,
        )
        self.writers.append(w)
        return w


class Running:
    """A writer stepping in a thread until stopped."""

    def __init__(self, writer: ChainWriter) -> None:
        self.writer = writer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=writer.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture
def chain(running_stack: StackHandle, tmp_path: Path, tag: str) -> Iterator[Chain]:
    topics = Topics(audit_facts=f"t.{tag}.audit.facts", audit_chain=f"t.{tag}.audit.chain")
    bootstrap = f"127.0.0.1:{running_stack.env['FACEGATE_KAFKA_PORT']}"
    specs = [s for s in topic_specs(topics) if s.name in (topics.audit_facts, topics.audit_chain)]
    auth = login_kwargs(running_stack)
    ensure_topics(bootstrap, specs, 1, auth)
    c = Chain(bootstrap, topics, tag, tmp_path, auth)
    try:
        yield c
    finally:
        for log in c.opened:
            log.close()
        for w in c.writers:
            w.close()
