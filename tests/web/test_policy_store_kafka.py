"""The console's policy store on real Kafka: apply writes the version where the workers
read it, history reads it back, and the raw and dead-letter topics follow the strictest
transport retention in force — as after ``facegate policy apply``."""

from __future__ import annotations

import time

import pytest
import yaml

from stream_processor.policy.document import PolicyDocument
from stream_processor.policy.retention import PolicyVersion
from stream_processor.runtime.kafka_auth import Role
from tests.conftest import Pipeline
from tests.support.kafka import confluent_config, login_kwargs
from tests.support.web import POLICY

pytestmark = pytest.mark.component


def _retention_ms(bootstrap: str, topic: str) -> int:
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient(confluent_config(bootstrap))
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(timeout=30)
    return int(configs["retention.ms"].value)


def test_apply_writes_history_and_tunes_transport_topics(pipeline: Pipeline) -> None:
    from stream_processor.web.policies import KafkaPolicyStore

    topics = pipeline.topics()
    bootstrap = pipeline.stack.settings().kafka_bootstrap
    # The console's store is the web app's: it writes and tunes as the web role.
    store = KafkaPolicyStore(bootstrap, topics, login_kwargs(pipeline.stack, Role.WEB))
    doc = yaml.safe_load(POLICY.format(tenant="acme", face="30d"))
    doc["transport"] = {"raw_retention": "2h", "dlq_retention": "3d"}
    for version in (1, 2):
        store.write(
            PolicyVersion(
                tenant="acme", version=version, applied_at_ms=int(time.time() * 1000),
                applied_by="web:test", comment=f"v{version}",
                document=PolicyDocument.model_validate(doc).model_dump(mode="json"),
            )
        )  # fmt: skip
    assert [v.version for v in store.history("acme")] == [1, 2]
    assert store.history("bolt") == []
    # A version out of bounds written by hand: the workers refuse it, history skips it.
    from stream_processor.runtime.ledger_client import write_records

    bad = store.history("acme")[-1].encode().replace(b'"version":2', b'"version":%d' % 2**64)
    assert b"%d" % 2**64 in bad
    write_records(
        bootstrap, topics.policies, [(b"acme@99999999", bad)],
        auth=login_kwargs(pipeline.stack, Role.WEB),
    )  # fmt: skip
    assert [v.version for v in store.history("acme")] == [1, 2]
    assert _retention_ms(bootstrap, topics.raw) == 2 * 3_600_000
    assert _retention_ms(bootstrap, topics.dlq) == 3 * 86_400_000
