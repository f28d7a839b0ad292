"""Each role's principal does exactly its job on a secured stack: a table over the ACL
plan (every role × every topic, write and read; the workers' app-id prefixes) checked
against the real broker, so the broker's answer and the plan cannot drift apart."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka import errors as kerr

from stream_processor.runtime.kafka_acls import permits
from stream_processor.runtime.kafka_auth import Role, client_config
from stream_processor.runtime.settings import BrokerSettings, Topics
from stream_processor.stack.kafka_auth import stack_acl_plan
from tests.conftest import FACEGATE

pytestmark = pytest.mark.component
T = Topics()
TOPICS = [T.raw, T.dlq, T.consent, T.erasure, T.policies, T.commands, T.acks,
          T.device_status, T.audit_checkpoints, T.audit_facts, T.audit_chain]  # fmt: skip
#: Hash-chained audit topics: a probe record would break the chain other tests verify on
#: this shared stack, so only their refusals are probed here (their writers and readers
#: are shown in tests/stack/test_audit_chain_auth.py).
CHAINED = {T.audit_facts, T.audit_chain}
CLIENTS = [Role.BRIDGE, Role.OFFICE, Role.WEB, Role.PROCESSOR, Role.ERASURE, Role.AUDIT,
           Role.STATUS]  # fmt: skip
PLAN = stack_acl_plan(T)


def _may_write(s: BrokerSettings, role: Role, topic: str) -> bool:
    return topic in _writable(s, role, [topic])


def _writable(s: BrokerSettings, role: Role, topics: list[str]) -> set[str]:
    """The topics of ``topics`` the broker lets ``role`` write, each tried with one record.
    One producer (one login) for all of them: a refusal is per topic, in the metadata
    answer or the produce answer, and leaves the producer usable for the next one."""
    producer = KafkaProducer(**client_config(role, s), acks="all", max_block_ms=8000)
    written = set()
    try:
        for topic in topics:
            # A tombstone: a write all the same, and no record a ledger's reader must parse.
            key = b"probe-" + uuid.uuid4().hex.encode()
            try:
                producer.send(topic, key=key, value=None).get(10)
            except kerr.TopicAuthorizationFailedError:
                continue
            written.add(topic)
    finally:
        producer.close(timeout=2)
    return written


def _readable(s: BrokerSettings, role: Role, topics: list[str]) -> set[str]:
    """Fetch partition 0 (which ``probed`` gave a record) of every topic from its start,
    with one consumer (one login): for each topic a record comes back, or the broker
    refuses it. librdkafka reports a refused fetch as an error event naming the topic,
    where kafka-python only logs it."""
    from confluent_kafka import Consumer, KafkaError
    from confluent_kafka import TopicPartition as Tp

    consumer = Consumer({**client_config(role, s, "confluent"), "group.id": "unused",
                         "enable.auto.commit": False})  # fmt: skip
    refused_code = KafkaError.TOPIC_AUTHORIZATION_FAILED
    answers: dict[str, bool] = {}
    try:
        for topic in topics:
            # Without DESCRIBE the broker answers no metadata, and nothing is fetched.
            described = consumer.list_topics(topic, timeout=10).topics[topic].error
            if described is not None and described.code() == refused_code:
                answers[topic] = False
        pending = [t for t in topics if t not in answers]
        consumer.assign([Tp(t, 0, -2) for t in pending])  # -2: the beginning
        deadline = time.monotonic() + 20
        while len(answers) < len(topics) and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            name = msg.topic() if msg is not None else None
            if msg is None or name is None or name not in pending or name in answers:
                continue
            error = msg.error()
            if error is None or error.code() == refused_code:
                answers[name] = error is None
        unanswered = sorted(set(topics) - set(answers))
        assert not unanswered, f"{role.value}: neither a record nor a refusal on {unanswered}"
        return {t for t, ok in answers.items() if ok}
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def probed(secured: BrokerSettings) -> None:
    """One record (a tombstone) on partition 0 of every topic, written by the admin."""
    producer = KafkaProducer(**client_config(Role.ADMIN, secured), acks="all")
    try:
        for topic in TOPICS:
            if topic not in CHAINED:
                producer.send(topic, key=b"probe", value=None, partition=0).get(10)
    finally:
        producer.close(timeout=2)


@pytest.mark.parametrize("role", CLIENTS, ids=lambda r: r.value)
def test_each_role_writes_exactly_the_topics_of_its_job(
    secured: BrokerSettings, role: Role
) -> None:
    expected = {t for t in TOPICS if permits(PLAN, role, "WRITE", "topic", t)}
    tried = [t for t in TOPICS if t not in CHAINED or t not in expected]
    assert _writable(secured, role, tried) == expected - CHAINED
    # The plan, read on its own, is the job: only the bridge brings events in, and
    # readers never write.
    if role is not Role.BRIDGE:
        assert T.raw not in expected
    if role is Role.STATUS:
        assert expected == set()


@pytest.mark.parametrize("role", CLIENTS, ids=lambda r: r.value)
def test_each_role_reads_exactly_the_topics_of_its_job(
    secured: BrokerSettings, probed: None, role: Role
) -> None:
    expected = {t for t in TOPICS if permits(PLAN, role, "READ", "topic", t)}
    checked = [t for t in TOPICS if t not in CHAINED or t not in expected]
    assert _readable(secured, role, checked) == expected - CHAINED


@pytest.fixture(scope="module")
def app_topics(secured: BrokerSettings) -> Iterator[tuple[str, str]]:
    """A changelog-like topic under each worker's app id, made by the admin."""
    from stream_processor.erasure.settings import ErasureSettings
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.runtime.kafka_auth import kafka_python_auth
    from stream_processor.runtime.topics import TopicSpec, ensure_topics

    processor = ProcessorSettings().app_id
    erasure = ErasureSettings().app_id or f"{processor}-erasure"
    assert erasure.startswith(processor)  # the default the plan has to keep apart
    names = (f"{processor}-probe-changelog", f"{erasure}-probe-changelog")
    specs = [TopicSpec(n, 1, {"cleanup.policy": "compact"}) for n in names]
    ensure_topics(secured.kafka_bootstrap, specs, 1, kafka_python_auth(secured, Role.ADMIN))
    yield names


def test_the_processor_cannot_touch_the_erasure_workers_changelog_or_group(
    secured: BrokerSettings, app_topics: tuple[str, str]
) -> None:
    processor_log, erasure_log = app_topics
    assert _may_write(secured, Role.PROCESSOR, processor_log)
    assert not _may_write(secured, Role.PROCESSOR, erasure_log)
    assert _may_write(secured, Role.ERASURE, erasure_log)
    assert not _may_write(secured, Role.ERASURE, processor_log)
    # Nor join the erasure worker's consumer group (its offsets decide what is erased).
    erasure_group = erasure_log.removesuffix("-probe-changelog")
    consumer = KafkaConsumer(
        T.raw, **client_config(Role.PROCESSOR, secured), group_id=erasure_group,
        enable_auto_commit=False,
    )  # fmt: skip
    try:
        with pytest.raises(kerr.GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=5000)
    finally:
        consumer.close()


def test_the_erasure_worker_carries_out_an_erasure_under_the_plan(
    secured_stack: tuple[BrokerSettings, dict[str, str]], tmp_path: Path
) -> None:
    """The real worker, logged in as the erasure role: it consumes the request in its own
    group and withdraws and tombstones the subject's consent (the write the plan lacked:
    the request stayed pending on TopicAuthorizationFailedError). The processor's
    principal may do neither."""
    from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
    from stream_processor.runtime.kafka_auth import kafka_python_auth
    from stream_processor.runtime.ledger_client import read_ledger, write_records

    secured, stack_env = secured_stack
    admin, office = (kafka_python_auth(secured, r) for r in (Role.ADMIN, Role.OFFICE))
    subject = "ps1_" + uuid.uuid4().hex
    grant = ConsentRecord(
        tenant="authco", site="erase", subject=subject, purpose="entry", at_ms=1,
        status=ConsentStatus.GRANTED, given_by=GivenBy.SELF, evidence_ref="form-1",
    )  # fmt: skip
    write_records(secured.kafka_bootstrap, T.consent, [(grant.key, grant.encode())], auth=office)
    env = {**os.environ, **stack_env, "FACEGATE_ERASURE_METRICS_PORT": "0"}
    log = tmp_path / "erasure.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([FACEGATE, "erasure", "worker"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        asked = subprocess.run(
            [FACEGATE, "erasure", "request", "--tenant", "authco", "--site", "erase",
             "--subject", subject, "--wait", "90"],
            env=env, capture_output=True, text=True, timeout=150,
        )  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(30)
    worker_log = log.read_text(errors="replace")
    # 0: complete; 3: still waiting for a gate another test registered on this stack.
    assert asked.returncode in (0, 3), asked.stdout + asked.stderr + worker_log[-2000:]
    assert "AuthorizationFailed" not in worker_log, worker_log[-2000:]
    ledger = read_ledger(secured.kafka_bootstrap, T.consent, auth=admin)
    assert not [k for k in ledger if subject.encode() in k]  # withdrawn, then tombstoned
    assert permits(PLAN, Role.ERASURE, "WRITE", "topic", T.consent)
    assert not permits(PLAN, Role.PROCESSOR, "WRITE", "topic", T.consent)
    assert not _may_write(secured, Role.PROCESSOR, T.consent)
