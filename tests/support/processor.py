"""Processor fixtures shared by the processor, policy, erasure, bridge and e2e tests:
helpers that make events, consents and policies and produce them straight to Kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

# -- helpers for tests on the real brokers -------------------------------------------

TENANT = "acme"
SECRET = b"k" * 32

BASE_POLICY: dict[str, Any] = {
    "tenant": TENANT,
    "legal_ceiling": "3y",
    "purposes": {
        "access_control": {},
        "parcel_delivery": {
            "description": "let couriers leave parcels at the lockers",
            "legal_basis": "the residents' service contract (parcel service)",
        },
    },
    "camera_purposes": ["access_control"],
    "retention": {
        "face_match": {"access_control": "30d"},
        "key_card": {"access_control": "90d"},
        "pin": {"access_control": "90d"},
        "manual_open": {"access_control": "90d"},
        "unknown_face": {"access_control": 0},
    },
    "transport": {"raw_retention": "1d", "dlq_retention": "7d"},
}


def subject(i: int, site: str = "site-1") -> str:
    from edge_agent.pseudonym import SiteSecret, pseudonym

    return pseudonym(SiteSecret(TENANT, site, SECRET), f"resident-{i:05d}")


def make_event(
    kind: str = "face_match",
    *,
    subject_id: int | None = 1,
    site: str = "site-1",
    gate: str = "gate-1",
    device: str = "cam-1",
    purpose: str = "access_control",
    seq: int = 0,
    occurred_at_ms: int | None = None,
    tenant: str = TENANT,
) -> Any:
    import time

    from edge_agent.wire import Decision, EventKind, GateEvent, ScoreBand, new_event_id

    k = EventKind(kind)
    now = occurred_at_ms if occurred_at_ms is not None else int(time.time() * 1000)
    face = k in (EventKind.FACE_MATCH, EventKind.UNKNOWN_FACE)
    return GateEvent(
        schema_version=1,
        event_id=new_event_id(now),
        seq=seq,
        tenant=tenant,
        site=site,
        gate=gate,
        device=device,
        kind=k,
        decision=Decision.DENIED if k is EventKind.UNKNOWN_FACE else Decision.GRANTED,
        purpose=purpose,
        occurred_at_ms=now,
        subject=subject(subject_id, site)
        if subject_id is not None and k in (EventKind.FACE_MATCH, EventKind.KEY_CARD, EventKind.PIN)
        else None,
        score_band=(ScoreBand.LOW if k is EventKind.UNKNOWN_FACE else ScoreBand.HIGH)
        if face
        else None,
        model="sim" if face else None,
        reason="no_match" if k is EventKind.UNKNOWN_FACE else None,
    )


class Harness:
    """Drives one test pipeline: CLI commands, raw events straight to Kafka, the store."""

    def __init__(self, pipeline: Any, store_target: dict[str, str]) -> None:
        self.p = pipeline
        self.target = store_target
        pipeline.extra_env.update(store_target)
        pipeline.extra_env.setdefault("FACEGATE_PROCESSOR_SWEEP_INTERVAL_S", "2")
        self.bootstrap = pipeline.stack.settings().kafka_bootstrap
        self.topics = pipeline.topics()
        self._producer: Any = None
        self._store: Any = None

    def cli(self, *args: str, check: bool = True) -> Any:
        import subprocess

        from tests.conftest import FACEGATE

        result = subprocess.run(
            [FACEGATE, *args], env=self.p.env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            cmd = " ".join(args)
            raise AssertionError(f"facegate {cmd} failed:\n{result.stdout}{result.stderr}")
        return result

    def apply_policy(self, doc: dict[str, Any], *extra: str) -> str:
        import yaml

        path = self.p.tmp / f"policy-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return str(self.cli("policy", "apply", str(path), *extra).stdout)

    def producer(self) -> Any:
        if self._producer is None:
            from tests.support.kafka import producer

            self._producer = producer(self.p.stack, acks="all", linger_ms=5)
        return self._producer

    def send_events(self, events: list[Any]) -> None:
        from edge_agent.wire import encode_event

        prod = self.producer()
        for e in events:
            prod.send(self.topics.raw, key=f"{e.tenant}/{e.site}".encode(), value=encode_event(e))
        prod.flush(30)

    def send_consents(self, records: list[Any]) -> None:
        prod = self.producer()
        for r in records:
            prod.send(self.topics.consent, key=r.key, value=r.encode())
        prod.flush(30)

    def store(self) -> Any:
        if self._store is None:
            from tests.support.store import open_store

            self._store = open_store(self.target)
        return self._store

    def count(self) -> int:
        return int(self.store().count())

    def read_topic(self, topic: str, timeout_s: float = 5.0) -> list[tuple[bytes, bytes]]:
        """Every record up to the topic's end as of the call. Reads to the end offsets,
        not until the topic goes quiet: heartbeats land on ledgers and changelogs every
        second, so an idle timeout may never be reached. ``timeout_s`` bounds a wait
        with no progress."""
        from kafka import TopicPartition

        from tests.support.kafka import consumer as make_consumer

        consumer = make_consumer(self.p.stack, enable_auto_commit=False)
        try:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            end = consumer.end_offsets(parts)
            out: list[tuple[bytes, bytes]] = []
            idle_until = time.monotonic() + timeout_s
            while any(consumer.position(tp) < end[tp] for tp in parts):
                batch = consumer.poll(timeout_ms=200)
                for records in batch.values():
                    out += [(m.key, m.value) for m in records]
                if batch:
                    idle_until = time.monotonic() + timeout_s
                elif time.monotonic() > idle_until:
                    break
            return out
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
        if self._store is not None:
            self._store.close()


@pytest.fixture
def harness(pipeline: Any, store_target: dict[str, str]) -> Iterator[Harness]:
    from tests.support.kafka import create_topics

    h = Harness(pipeline, store_target)
    create_topics(pipeline.stack, h.topics)
    try:
        yield h
    finally:
        h.close()


def grant_record(i: int, purpose: str = "access_control", site: str = "site-1", **kw: Any) -> Any:
    import time

    from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy

    return ConsentRecord(
        tenant=kw.get("tenant", TENANT), site=site, subject=subject(i, site), purpose=purpose,
        status=ConsentStatus.GRANTED, given_by=GivenBy.SELF, evidence_ref=f"form-{i}",
        at_ms=int(time.time() * 1000),
    )  # fmt: skip
