"""The notices' policy view survives its topic (real Kafka): a version the processors
would refuse is dead-lettered with its coordinates and counted, the last good version
stays in force, and the next good one is taken."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from stream_processor.notices.policy_retention import PolicyTopicRetention
from stream_processor.policy.keys import policy_key
from stream_processor.quarantine import ConsumerMetrics, KafkaDeadLetters, Quarantine, Refusal
from stream_processor.runtime.kafka_auth import Role
from tests.conftest import StackHandle, wait_for
from tests.support.kafka import grant_pipeline, login_kwargs, revoke_private
from tests.support.records import dead_letters, json_values, private_topics, produce
from tests.support.web import policy_version


@pytest.mark.component
def test_a_refused_policy_is_quarantined_and_the_last_good_one_kept(
    running_stack: StackHandle, request: pytest.FixtureRequest
) -> None:
    bootstrap = running_stack.settings().kafka_bootstrap
    topics = private_topics(bootstrap, "policies", "dlq")
    # The view and its dead-letter sink are the web app's: they run as the web role.
    grants = grant_pipeline(
        running_stack, topics, "facegate-processor", "facegate-processor-erasure"
    )
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    auth = login_kwargs(running_stack, Role.WEB)
    key = policy_key("acme")
    produce(bootstrap, topics.policies, [
        (key, policy_version("30d", 1)),
        (key, b'{"tenant": "acme", "version": 99999999999999999999999}'),
        (key, policy_version("1d", 2, tenant="other")),  # another tenant's under acme's key
        (key, b"\xff garbage"),
        (key, policy_version("30d", 4)[:-1] + b', "image": "AAAA"}'),  # a field it does not have
        (key, policy_version("30d", 5).replace(b'"tenant":"acme"', b'"tenant":7', 1)),
    ])  # fmt: skip
    registry = CollectorRegistry()
    sink = KafkaDeadLetters(bootstrap, topics.dlq, auth=auth)
    view = PolicyTopicRetention(
        bootstrap, topics.policies,
        quarantine=Quarantine("web_policies", ConsumerMetrics(registry)), dead_letters=sink,
        auth=auth,
    ).start()  # fmt: skip
    try:
        assert view.wait_caught_up(60)
        assert view.version("acme") == 1  # the last good version stays in force
        produce(bootstrap, topics.policies, [(key, policy_version("7d", 3))])
        wait_for(lambda: view.version("acme") == 3, 60, "the next good version")
    finally:
        view.stop()
        sink.close()
    got = [(d.source_offset, d.reason, d.stage) for d in dead_letters(bootstrap, topics.dlq)]
    assert got == [
        (1, "invalid_policy", "web_policies"),
        (2, "key_mismatch", "web_policies"),
        (3, "invalid_policy", "web_policies"),
        (4, "invalid_policy", "web_policies"),
        (5, "invalid_policy", "web_policies"),
    ]
    counted = registry.get_sample_value(
        "facegate_consumer_quarantined_total",
        {"consumer": "web_policies", "reason": "invalid_policy"},
    )
    assert counted == 4


@settings(max_examples=300, deadline=None)
@given(
    value=json_values,
    merged=st.booleans(),
)
def test_the_policy_reader_refuses_arbitrary_json_with_a_reason(value: Any, merged: bool) -> None:
    if merged and isinstance(value, dict):
        value = {**json.loads(policy_version("30d", 1)), **value}
    view = PolicyTopicRetention(
        "unused:1", "p", quarantine=Quarantine("t", ConsumerMetrics(CollectorRegistry())),
        dead_letters=KafkaDeadLetters("unused:1", "dlq"),
    )  # fmt: skip
    out = view.apply(policy_key("acme"), json.dumps(value).encode())
    if isinstance(out, Refusal):
        assert out.reason in {"invalid_policy", "key_mismatch"}
    else:
        assert out is None and view.version("acme") is not None
