"""Only facegate's processes write the ledgers: a local stack with FACEGATE_KAFKA_AUTH on
(SASL/SCRAM-SHA-512 per role, ACLs, no anonymous access) refuses an unauthenticated
client and a wrong principal on the consent topic; the office's principal writes."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka import errors as kerr

from stream_processor.errors import BrokerError
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth, users_path
from stream_processor.runtime.ledger_client import read_ledger, write_records
from stream_processor.runtime.settings import BrokerSettings, Topics
from tests.conftest import FACEGATE
from tests.stack.conftest import run_cli

pytestmark = pytest.mark.component
CONSENT = Topics().consent


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args)


def _produce(s: BrokerSettings, key: bytes, **login: Any) -> None:
    producer = KafkaProducer(
        bootstrap_servers=s.kafka_bootstrap, acks="all", max_block_ms=5000, **login
    )
    try:
        producer.send(CONSENT, key=key, value=b"forged").get(timeout=10)
    finally:
        producer.close(timeout=2)


def test_the_passwords_are_private(secured: BrokerSettings) -> None:
    assert stat.S_IMODE(users_path(secured.state_dir).stat().st_mode) == 0o600


def test_an_unauthenticated_producer_is_refused(secured: BrokerSettings) -> None:
    key = uuid.uuid4().hex.encode()
    # No SASL at all: the listener speaks nothing else, so not even metadata comes back.
    with pytest.raises(kerr.KafkaTimeoutError):
        _produce(secured, key, api_version=(3, 7))
    # A known user with a guessed password fails authentication.
    guessed = {**kafka_python_auth(secured, Role.OFFICE), "sasl_plain_password": "guess"}
    with pytest.raises((kerr.KafkaTimeoutError, kerr.NoBrokersAvailable)):
        _produce(secured, key, **guessed)
    assert key not in read_ledger(
        secured.kafka_bootstrap, CONSENT, auth=kafka_python_auth(secured, Role.ADMIN)
    )


# Not the erasure worker: an erasure withdraws and tombstones the subject's consent
# (tests/stack/test_kafka_auth_roles.py runs it).
@pytest.mark.parametrize("role", [Role.BRIDGE, Role.PROCESSOR, Role.AUDIT])
def test_a_wrong_principal_cannot_write_consent(secured: BrokerSettings, role: Role) -> None:
    key = uuid.uuid4().hex.encode()
    with pytest.raises(kerr.TopicAuthorizationFailedError):
        _produce(secured, key, **kafka_python_auth(secured, role))
    with pytest.raises(BrokerError, match="TopicAuthorizationFailed"):
        write_records(
            secured.kafka_bootstrap, CONSENT, [(key, b"x")], auth=kafka_python_auth(secured, role)
        )
    assert key not in read_ledger(
        secured.kafka_bootstrap, CONSENT, auth=kafka_python_auth(secured, Role.ADMIN)
    )


def test_the_office_principal_writes_consent(secured: BrokerSettings) -> None:
    key = uuid.uuid4().hex.encode()
    office = kafka_python_auth(secured, Role.OFFICE)
    assert write_records(secured.kafka_bootstrap, CONSENT, [(key, b"granted")], auth=office) == 1
    assert read_ledger(secured.kafka_bootstrap, CONSENT, auth=office)[key] == b"granted"
    # Not a consent record: gone again for the commands that read the ledger later.
    write_records(secured.kafka_bootstrap, CONSENT, [(key, None)], auth=office)


def _deliver(producer: Any, topic: str) -> Any:
    results: list[Any] = []
    producer.produce(topic, key=b"k", value=b"v", on_delivery=lambda err, _m: results.append(err))
    producer.flush(15)
    assert len(results) == 1
    return results[0]


def test_the_bridge_client_writes_raw_events_and_nothing_else(secured: BrokerSettings) -> None:
    from confluent_kafka import KafkaError

    from stream_processor.bridge.service import make_producer
    from stream_processor.bridge.settings import BridgeSettings
    from stream_processor.runtime.kafka_auth import confluent_auth

    producer = make_producer(
        secured.kafka_bootstrap, BridgeSettings(), auth=confluent_auth(secured, Role.BRIDGE)
    )
    assert _deliver(producer, Topics().raw) is None
    refused = _deliver(producer, CONSENT)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_processor_worker_logs_in_and_stores_an_allowed_event(
    secured: BrokerSettings, tmp_path: Path
) -> None:
    import time

    from confluent_kafka import Producer

    from edge_agent.wire import encode_event
    from stream_processor.policy.document import PolicyDocument
    from stream_processor.policy.keys import history_key, policy_key
    from stream_processor.policy.retention import PolicyVersion
    from stream_processor.runtime.kafka_auth import confluent_auth
    from stream_processor.store.sqlite import SqliteEventStore
    from tests.support.processor import BASE_POLICY, TENANT, grant_record, make_event

    topics, office = Topics(), kafka_python_auth(secured, Role.OFFICE)
    version = PolicyVersion(
        tenant=TENANT, version=1, applied_at_ms=int(time.time() * 1000), applied_by="test",
        document=PolicyDocument.model_validate(BASE_POLICY).model_dump(mode="json"),
    ).encode()  # fmt: skip
    pairs = [(history_key(TENANT, 1), version), (policy_key(TENANT), version)]
    write_records(secured.kafka_bootstrap, topics.policies, pairs, auth=office)
    grant = grant_record(1)
    write_records(
        secured.kafka_bootstrap, topics.consent, [(grant.key, grant.encode())], auth=office
    )
    bridge = Producer(
        {"bootstrap.servers": secured.kafka_bootstrap, **confluent_auth(secured, Role.BRIDGE)}
    )
    event = make_event()
    bridge.produce(topics.raw, key=f"{TENANT}/site-1".encode(), value=encode_event(event))
    assert bridge.flush(15) == 0
    store_path = tmp_path / "events.sqlite"
    env = {
        **os.environ,
        "FACEGATE_STATE_DIR": str(secured.state_dir),
        "FACEGATE_KAFKA_PORT": str(secured.kafka_port),
        "FACEGATE_KAFKA_AUTH": "true",
        "FACEGATE_STORE": "sqlite",
        "FACEGATE_PROCESSOR_STORE_PATH": str(store_path),
        "FACEGATE_PROCESSOR_METRICS_PORT": "0",
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [FACEGATE, "processor", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        stored = 0
        while time.monotonic() < deadline and worker.poll() is None:
            if store_path.exists():
                store = SqliteEventStore(store_path)
                stored = store.count()
                store.close()
                if stored:
                    break
            time.sleep(1)
        assert stored == 1, (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()


def test_the_erasure_worker_clients_do_what_its_receipts_need(secured: BrokerSettings) -> None:
    from stream_processor.audit.checkpoint import Checkpoint
    from stream_processor.audit.wiring import kafka_publisher
    from stream_processor.erasure.kafka_configs import describe_topics
    from stream_processor.erasure.ledger_index import LedgerIndex
    from stream_processor.erasure.roster import StatusLedgerDevices

    t, login = Topics(), kafka_python_auth(secured, Role.ERASURE)
    bootstrap = secured.kafka_bootstrap
    retentions = describe_topics(bootstrap, [t.raw, t.consent], login)
    assert {r.topic for r in retentions} == {t.raw, t.consent}
    ledger, roster = LedgerIndex(bootstrap, t.consent, auth=login), None
    try:
        assert isinstance(ledger.keys(), set)
        roster = StatusLedgerDevices(bootstrap, t.device_status, auth=login)
        assert roster.devices() == []
    finally:
        ledger.close()
        if roster is not None:
            roster.close()
    publisher = kafka_publisher(bootstrap, t.audit_checkpoints, login)
    try:
        publisher.publish(
            Checkpoint(v=1, log_id="test", seq=0, hash="00", at_ms=0, key_id="k", sig="s")
        )
    finally:
        publisher.close()
    # The same client may not write the raw events the bridge keeps. (It may beat the
    # consent and policies ledgers: erasure/ledger_heartbeat.py.)
    with pytest.raises(BrokerError, match="TopicAuthorizationFailed"):
        write_records(bootstrap, t.raw, [(b"acme", b"x")], auth=login)


@pytest.mark.parametrize("role", [Role.OFFICE, Role.BRIDGE, Role.PROCESSOR])
def test_no_role_may_shorten_a_ledger_or_grant_itself_more(
    secured: BrokerSettings, role: Role
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ConfigResource,
        ConfigResourceType,
        NewTopic,
        ResourcePattern,
        ResourceType,
    )

    admin = KafkaAdminClient(
        bootstrap_servers=secured.kafka_bootstrap, **kafka_python_auth(secured, role)
    )
    try:
        # Retention of 1 ms on the consent ledger would erase every grant.
        shorten = ConfigResource(ConfigResourceType.TOPIC, CONSENT, configs={"retention.ms": "1"})
        answer = admin.alter_configs([shorten])
        assert [r[0] for r in answer.resources] == [kerr.TopicAuthorizationFailedError.errno]
        with pytest.raises(kerr.TopicAuthorizationFailedError):
            admin.create_topics([NewTopic("facegate.consent2", 1, 1)])
        everything = ACL(
            principal=f"User:{role.user}", host="*", operation=ACLOperation.ALL,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                ResourceType.TOPIC, "facegate", ACLResourcePatternType.PREFIXED
            ),
        )  # fmt: skip
        refused = admin.create_acls([everything])
        assert refused["failed"] and not refused["succeeded"]
    finally:
        admin.close()


def test_policy_apply_logs_in_as_the_office(secured: BrokerSettings, tmp_path: Path) -> None:
    import yaml

    from tests.support.processor import BASE_POLICY

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({**BASE_POLICY, "tenant": "authco"}))
    env = {
        "FACEGATE_STATE_DIR": str(secured.state_dir),
        "FACEGATE_KAFKA_PORT": str(secured.kafka_port),
        "FACEGATE_KAFKA_AUTH": "true",
    }
    applied = _run(env, "policy", "apply", str(path))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "applied policy v1 for authco" in applied.stdout
    # Raw retention follows the strictest policy (1d): the office may tune that topic.
    assert "retention 86400s" in applied.stdout
    # Without a login the same command is one Error line, not a traceback. Its own state
    # dir: with the secured one the settings would refuse the contradiction before the
    # broker could refuse the client.
    elsewhere = {**env, "FACEGATE_STATE_DIR": str(tmp_path / "elsewhere")}
    anonymous = _run({**elsewhere, "FACEGATE_KAFKA_AUTH": "false"}, "policy", "apply", str(path))
    assert anonymous.returncode != 0
    assert anonymous.stderr.startswith("Error:") and "Traceback" not in anonymous.stderr


def test_the_consent_cli_logs_in_as_the_office(secured: BrokerSettings, tmp_path: Path) -> None:
    import yaml

    from tests.support.processor import BASE_POLICY, subject

    env = {
        "FACEGATE_STATE_DIR": str(secured.state_dir),
        "FACEGATE_KAFKA_PORT": str(secured.kafka_port),
        "FACEGATE_KAFKA_AUTH": "true",
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({**BASE_POLICY, "tenant": "consentco"}))
    assert _run(env, "policy", "apply", str(path)).returncode == 0
    place = ("--tenant", "consentco", "--site", "site-1", "--subject", subject(7))
    granted = _run(
        env, "consent", "grant", *place, "--purpose", "access_control", "--consent-ref", "f-1"
    )
    assert granted.returncode == 0, granted.stdout + granted.stderr
    forgotten = _run(env, "consent", "forget", *place)
    assert forgotten.returncode == 0, forgotten.stdout + forgotten.stderr
    assert forgotten.stdout.startswith("1 ledger records tombstoned")
