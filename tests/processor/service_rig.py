"""Drives ``ProcessorService`` in-process on a real store: records in, rows and dead
letters out. No broker: the dead-letter sink is a list, the look-ups are fixed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry

from edge_agent.wire import GateEvent, decode_event
from stream_processor.dead_letter import DeadLetter, decode_dead_letter
from stream_processor.policy.consent import ConsentState
from stream_processor.policy.document import PolicyDocument
from stream_processor.policy.retention import CompiledPolicy
from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.processor.service import NoInputControl, ProcessorService, RetryPolicy
from stream_processor.processor.writer import InlineStoreWriter
from stream_processor.quarantine import ConsumerMetrics, Quarantine
from stream_processor.store.base import EventStore
from tests.support.processor import BASE_POLICY, make_event
from tests.support.store import open_store

TOPIC = "t.raw"
POISON_GATE = "gate-poison"


class Record(NamedTuple):
    """A raw-topic record as aiokafka hands it over."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes | None


class ListSink:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def send(self, key: bytes, value: bytes) -> None:
        letter = decode_dead_letter(value)
        assert key == letter.reason.encode()
        self.letters.append(letter)


def compiled(doc: dict[str, Any] | None = None) -> CompiledPolicy:
    return CompiledPolicy(PolicyDocument.model_validate(doc or BASE_POLICY), version=1)


class Rig:
    def __init__(self, target: dict[str, str], now_ms: int) -> None:
        self.target = target
        self.now_ms = now_ms
        self.sink = ListSink()
        self.registry = CollectorRegistry()
        self.policy = compiled()
        self.quarantine_type: type[Quarantine] = Quarantine
        self._offset = 0

    def record(self, value: bytes | None, *, received_ms: int | None = None) -> Record:
        self._offset += 1
        ts = self.now_ms if received_ms is None else received_ms
        return Record(TOPIC, self._offset % 3, self._offset, ts, value)

    def service(self, writer: InlineStoreWriter) -> ProcessorService:
        return ProcessorService(
            writer,
            self.sink,
            self.quarantine_type("processor", ConsumerMetrics(self.registry), clock=self.clock),
            ProcessorMetrics(self.registry),
            policy_of=lambda tenant: self.policy if tenant == self.policy.tenant else None,
            consent_of=lambda *_: ConsentState.GRANTED,
            retry=RetryPolicy(first_s=0.01, max_s=0.05),
            clock=self.clock,
        )

    def clock(self) -> float:
        return self.now_ms / 1000

    def run(self, batches: list[list[Record]]) -> list[int]:
        """Decide and store each batch as the ingest loop does; returns rows inserted."""

        async def go() -> list[int]:
            writer = InlineStoreWriter(partial(open_store, self.target))
            await writer.open()
            service = self.service(writer)
            try:
                return [
                    await service.store(await service.decide(batch), NoInputControl())
                    for batch in batches
                ]
            finally:
                await writer.close()

        return asyncio.run(go())

    def quarantined(self, reason: str) -> float:
        value = self.registry.get_sample_value(
            "facegate_consumer_quarantined_total", {"consumer": "processor", "reason": reason}
        )
        return value or 0.0


@contextmanager
def opened(target: dict[str, str]) -> Iterator[EventStore]:
    store: EventStore = open_store(target)
    try:
        yield store
    finally:
        store.close()


def decoded(value: bytes) -> GateEvent | None:
    try:
        return decode_event(value)
    except Exception:  # noqa: BLE001 - the caller only asks "would the decoder take it"
        return None


def add_refusing_constraint(target: dict[str, str], gate: str) -> None:
    """Make the store refuse rows of one gate, as a database with a constraint of its
    own would: valid JSON, a valid event, and still a row the store will not take."""
    if target["FACEGATE_STORE"] == "sqlite":
        import sqlite3

        with opened(target):  # creates the schema
            pass
        db = sqlite3.connect(target["FACEGATE_PROCESSOR_STORE_PATH"])
        try:
            db.execute(
                "CREATE TRIGGER refuse_gate BEFORE INSERT ON events "
                f"WHEN NEW.gate = '{gate}' BEGIN SELECT RAISE(ABORT, 'gate refused'); END"
            )
            db.commit()
        finally:
            db.close()
        return
    import psycopg

    with opened(target):
        pass
    with psycopg.connect(target["FACEGATE_POSTGRES_DSN"], autocommit=True) as conn:
        conn.execute(f"ALTER TABLE events ADD CONSTRAINT refuse_gate CHECK (gate <> '{gate}')")


def as_json(event: GateEvent) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(event)
    return out


def poison_values(now_ms: int) -> list[bytes | None]:
    """Records a bridge would never pass, written straight to the raw topic."""
    base = as_json(make_event(seq=1, occurred_at_ms=now_ms))

    def variant(**kw: Any) -> bytes:
        return json.dumps({**base, **kw}).encode()

    return [
        b"\xff\xfe\x00 not json at all",
        None,  # a tombstone on the raw topic
        variant(seq=10**400),
        variant(seq=2**64),
        variant(seq=2**63),
        variant(seq="7"),
        variant(occurred_at_ms=None),
        b'{"schema_version": 1, "event_id": "\xed\xa0\x80"}',  # a lone surrogate, as UTF-8
        b'{"\x80ite": "site-1", "seq": 1}',  # invalid UTF-8 in a key
        b"[" * 100_000 + b"]" * 100_000,
        b'{"seq": 1, "seq": 2}',
        json.dumps({**base, "image": "AAAA"}).encode(),
    ]
