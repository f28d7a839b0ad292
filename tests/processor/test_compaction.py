"""The compacted ledgers really forget: with small stated settings, a superseded
consent record and a tombstoned one are physically gone from the topic (and from
the worker's table changelog) within the documented bound.

The ledgers' segments are rolled by the erasure worker's heartbeat (the processor's
role may not write them; ``stream_processor/erasure/ledger_heartbeat.py``), the
changelogs' by the processor's own. With the suite's Kafka auth on, every process
runs as its real role under the ACL plan, so this is also the test that those
heartbeats are allowed and that the processor still cannot write either ledger."""

from __future__ import annotations

import time
import uuid

import pytest

from stream_processor.erasure.ledger_heartbeat import writer_key
from stream_processor.policy.consent import ConsentStatus
from stream_processor.runtime.kafka_auth import Role
from tests.conftest import Pipeline, wait_for
from tests.support.kafka import admin_client, create_topics, kafka_kwargs
from tests.support.processor import Harness, grant_record

pytestmark = pytest.mark.component

S = 2000  # segment.ms = max.compaction.lag.ms = delete.retention.ms


def _erasure_worker_env(pipeline: Pipeline) -> None:
    pipeline.extra_env.update({
        "FACEGATE_TOPIC_ERASURE": f"t.{pipeline.tag}.erasure",
        "FACEGATE_ERASURE_METRICS_PORT": "0",
        "FACEGATE_AUDIT_DIR": str(pipeline.tmp / "audit"),
        "FACEGATE_ERASURE_DB_PATH": str(pipeline.tmp / "rights.sqlite"),
    })  # fmt: skip


def _processor_may_write(pipeline: Pipeline, topic: str) -> bool:
    from kafka import KafkaProducer
    from kafka import errors as kerr

    producer = KafkaProducer(
        **kafka_kwargs(pipeline.stack, Role.PROCESSOR), acks="all", max_block_ms=8000
    )
    try:
        # A heartbeat-shaped tombstone: a write all the same, and no record to parse.
        producer.send(topic, key=b"_heartbeat/probe-" + uuid.uuid4().hex.encode(),
                      value=None).get(10)  # fmt: skip
        return True
    except kerr.TopicAuthorizationFailedError:
        return False
    finally:
        producer.close(timeout=2)


def test_superseded_and_tombstoned_consent_records_are_gone_within_the_bound(
    pipeline: Pipeline,
) -> None:
    import msgspec
    from kafka.admin import ConfigResource, ConfigResourceType

    for name in ("SEGMENT_MS", "MAX_COMPACTION_LAG_MS", "DELETE_RETENTION_MS"):
        pipeline.extra_env[f"FACEGATE_TOPIC_LEDGER_{name}"] = str(S)
    _erasure_worker_env(pipeline)
    h = Harness(pipeline, {"FACEGATE_STORE": "sqlite"})
    topics = pipeline.topics()  # with the ledger settings and erasure topic set above
    assert (topics.ledger_segment_ms, topics.erasure) == (S, f"t.{pipeline.tag}.erasure")
    create_topics(pipeline.stack, topics)
    pipeline.grant()

    def topic_configs(name: str) -> dict[str, str]:
        admin = admin_client(pipeline.stack)
        try:
            res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            return {c[0]: c[1] for c in res[0].resources[0][4]}
        finally:
            admin.close()

    # Altered configs reach the broker's log manager through the metadata log.
    wait_for(
        lambda: topic_configs(h.topics.consent).get("segment.ms") == str(S), 30, "configs applied"
    )
    pipeline.start("processor", "worker", name="p1")
    pipeline.start("erasure", "worker", name="e1")
    try:
        beat = writer_key(pipeline.erasure_app)

        def beaten() -> bool:
            return all(
                beat in {k for k, _ in h.read_topic(t, 1.0)}
                for t in (topics.consent, topics.policies)
            )

        wait_for(beaten, 60, "the erasure worker's heartbeat on both ledgers")
        first = grant_record(1)
        forgotten = grant_record(2)
        h.send_consents([first, forgotten])
        time.sleep(1)
        superseding = msgspec.structs.replace(
            first, status=ConsentStatus.WITHDRAWN, evidence_ref=None, at_ms=first.at_ms + 1
        )
        h.send_consents([superseding])
        prod = h.producer()
        prod.send(h.topics.consent, key=forgotten.key, value=None)  # tombstone
        prod.flush(10)
        t0 = time.monotonic()
        changelog = f"proc-{pipeline.tag}-consent-changelog"

        def gone(topic: str) -> bool:
            values = [v for k, v in h.read_topic(topic, 1.0) if k in (first.key, forgotten.key)]
            print(f"{time.monotonic() - t0:5.1f}s {topic}: {len(values)} records of the two keys")
            return first.encode() not in values and forgotten.encode() not in values

        # Bound (docs/processor.md): S + S/2 + B(5 s) + one cleaner pass; allow 60 s.
        wait_for(lambda: gone(h.topics.consent), 90, "superseded + tombstoned records compacted")
        ledger_s = time.monotonic() - t0
        wait_for(lambda: gone(changelog), 60, "the table changelog compacted too")
        # ... and the tombstone itself disappears after delete.retention.ms.
        wait_for(
            lambda: forgotten.key not in {k for k, _ in h.read_topic(h.topics.consent, 1.0)},
            90,
            "the tombstone itself removed",
        )
        print(f"\nsuperseded/tombstoned consent gone from the ledger after {ledger_s:.0f}s")

        configs = topic_configs(changelog)
        assert configs["cleanup.policy"] == "compact"
        assert configs["max.compaction.lag.ms"] == str(S)
        assert configs["delete.retention.ms"] == str(S)
        for name in ("p1", "e1"):
            assert "AuthorizationFailed" not in pipeline.log(name), pipeline.log(name)[-3000:]
        if pipeline.stack.kafka_auth:
            assert not _processor_may_write(pipeline, topics.consent)
            assert not _processor_may_write(pipeline, topics.policies)
    finally:
        h.close()
