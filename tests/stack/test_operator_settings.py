"""``facegate stack up`` keeps what operators chose: the raw and dead-letter topics'
retention comes from the policy in force, never back to the defaults."""

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
    return int(admin.describe_configs([res])[res].result(timeout=30)["retention.ms"].value)


def test_stack_up_keeps_the_retention_policy_apply_set(pipeline: Pipeline) -> None:
    from stream_processor.stack.stack import Stack
    from stream_processor.web.policies import KafkaPolicyStore

    topics = pipeline.topics()
    bootstrap = pipeline.stack.settings().kafka_bootstrap
    defaults = (_retention_ms(bootstrap, topics.raw), _retention_ms(bootstrap, topics.dlq))
    doc = yaml.safe_load(POLICY.format(tenant="acme", face="30d"))
    doc["transport"] = {"raw_retention": "2h", "dlq_retention": "3d"}
    # The web app's own store, logged in as the web app.
    KafkaPolicyStore(bootstrap, topics, login_kwargs(pipeline.stack, Role.WEB)).write(
        PolicyVersion(
            tenant="acme", version=1, applied_at_ms=int(time.time() * 1000),
            applied_by="web:test", comment="v1",
            document=PolicyDocument.model_validate(doc).model_dump(mode="json"),
        )
    )  # fmt: skip
    applied = (2 * 3_600_000, 3 * 86_400_000)
    assert defaults != applied
    assert (_retention_ms(bootstrap, topics.raw), _retention_ms(bootstrap, topics.dlq)) == applied

    status = Stack(pipeline.stack.settings(), topics).up()
    assert status.up
    assert (_retention_ms(bootstrap, topics.raw), _retention_ms(bootstrap, topics.dlq)) == applied
