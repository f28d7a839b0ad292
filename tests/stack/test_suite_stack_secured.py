"""The suite's own shared stack runs Kafka with SASL/SCRAM and the role ACLs on, and a
test's private pipeline is held to the production plan: so auth cannot silently go
off for the rest of the suite (FACEGATE_TEST_KAFKA_AUTH=0 is for debugging only)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka import errors as kerr

from stream_processor.runtime.kafka_auth import Role
from stream_processor.runtime.ledger_client import read_ledger
from tests.conftest import SUITE_KAFKA_AUTH, Pipeline
from tests.support.kafka import kafka_kwargs, login_kwargs, producer

pytestmark = pytest.mark.component


def _send(topic: str, key: bytes, **config: Any) -> None:
    client = KafkaProducer(acks="all", max_block_ms=5000, **config)
    try:
        client.send(topic, key=key, value=b"forged").get(timeout=10)
    finally:
        client.close(timeout=2)


def _ledger(pipeline: Pipeline) -> dict[bytes, Any]:
    s = pipeline.stack.settings()
    return read_ledger(s.kafka_bootstrap, pipeline.topics().consent, auth=login_kwargs(s))


def test_an_anonymous_producer_to_the_pipelines_consent_topic_is_refused(
    pipeline: Pipeline,
) -> None:
    assert SUITE_KAFKA_AUTH and pipeline.stack.settings().kafka_auth, "the suite runs open"
    key = uuid.uuid4().hex.encode()
    bootstrap = pipeline.stack.settings().kafka_bootstrap
    with pytest.raises(kerr.KafkaTimeoutError):
        _send(pipeline.topics().consent, key, bootstrap_servers=bootstrap, api_version=(3, 7))
    # A principal that has a login but no business with the ledgers is refused too.
    with pytest.raises(kerr.TopicAuthorizationFailedError):
        _send(pipeline.topics().consent, key, **kafka_kwargs(pipeline.stack, Role.BRIDGE))
    assert key not in _ledger(pipeline)


def test_the_pipelines_own_names_carry_the_production_grants(pipeline: Pipeline) -> None:
    """The office writes the private consent topic, as it does the default one; the
    test's own admin client reads it back."""
    key = uuid.uuid4().hex.encode()
    _send(pipeline.topics().consent, key, **kafka_kwargs(pipeline.stack, Role.OFFICE))
    assert key in _ledger(pipeline)
    admin = producer(pipeline.stack, acks="all")
    try:
        admin.send(pipeline.topics().consent, key=key, value=None).get(timeout=10)
    finally:
        admin.close(timeout=2)
