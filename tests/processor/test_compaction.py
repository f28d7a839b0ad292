"""The compacted ledgers really forget: with small stated settings, a superseded
consent record and a tombstoned one are physically gone from the topic (and from
the worker's table changelog) within the documented bound."""

from __future__ import annotations

import time

import pytest

from stream_processor.policy.consent import ConsentStatus
from tests.conftest import Pipeline, wait_for
from tests.support.processor import Harness, grant_record

pytestmark = pytest.mark.component

S = 2000  # segment.ms = max.compaction.lag.ms = delete.retention.ms


def test_superseded_and_tombstoned_consent_records_are_gone_within_the_bound(
    pipeline: Pipeline,
) -> None:
    import msgspec
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    for name in ("SEGMENT_MS", "MAX_COMPACTION_LAG_MS", "DELETE_RETENTION_MS"):
        pipeline.extra_env[f"FACEGATE_TOPIC_LEDGER_{name}"] = str(S)
    h = Harness(pipeline, {"FACEGATE_STORE": "sqlite"})
    topics = h.topics.model_copy(
        update={
            "ledger_segment_ms": S,
            "ledger_max_compaction_lag_ms": S,
            "ledger_delete_retention_ms": S,
        }
    )
    from stream_processor.runtime.topics import ensure_topics, topic_specs

    ensure_topics(h.bootstrap, topic_specs(topics))

    def topic_configs(name: str) -> dict[str, str]:
        admin = KafkaAdminClient(bootstrap_servers=h.bootstrap)
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
    try:
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
    finally:
        h.close()
