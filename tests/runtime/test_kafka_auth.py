"""Kafka principals per role: passwords kept private, client settings per library,
least-privilege ACLs (pure parts; the broker test is tests/stack/test_kafka_auth.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from stream_processor.errors import ConfigError
from stream_processor.runtime.kafka_acls import Grant, acl_plan
from stream_processor.runtime.kafka_auth import (
    Role,
    client_config,
    confluent_auth,
    ensure_passwords,
    kafka_python_auth,
    login,
    users_path,
)
from stream_processor.runtime.settings import BrokerSettings, Topics
from stream_processor.stack.kafka_auth import scram_format_args, with_auth

T = Topics()
PLAN = acl_plan(T, "facegate-processor", "facegate-erasure")


def _writers(topic: str) -> set[Role]:
    return {
        g.role
        for g in PLAN
        if g.resource == "topic" and g.operation == "WRITE" and not g.prefixed and g.name == topic
    }


def test_only_the_office_the_web_app_and_the_erasure_worker_write_the_ledgers() -> None:
    # An erasure withdraws the subject's consent and tombstones their consent records;
    # the erasure worker also beats both ledgers so erased records are compacted within
    # the bound its receipts state (erasure/ledger_heartbeat.py). Never the processor:
    # a worker that could write consent could forge it.
    assert _writers(T.consent) == {Role.OFFICE, Role.WEB, Role.ERASURE}
    assert _writers(T.policies) == {Role.OFFICE, Role.WEB, Role.ERASURE}
    assert Role.PROCESSOR not in _writers(T.consent) | _writers(T.policies)
    # The erasure worker records progress on its own requests' topic.
    assert _writers(T.erasure) == {Role.OFFICE, Role.WEB, Role.ERASURE}


def test_status_only_looks() -> None:
    # It describes topics and their configs (replication) and groups; never reads a record.
    assert {g.operation for g in PLAN if g.role is Role.STATUS} == {"DESCRIBE", "DESCRIBE_CONFIGS"}
    assert not [g for g in PLAN if g.role is Role.STATUS and g.deny]


def test_an_app_id_inside_another_apps_prefix_is_denied_to_the_other() -> None:
    # The erasure worker's default app id starts with the processor's.
    plan = acl_plan(T, "facegate-processor", "facegate-processor-erasure")
    denied = {(g.role, g.resource, g.name) for g in plan if g.deny}
    assert denied == {
        (Role.PROCESSOR, "topic", "facegate-processor-erasure"),
        (Role.PROCESSOR, "group", "facegate-processor-erasure"),
    }
    assert all(g.prefixed and g.operation == "ALL" for g in plan if g.deny)
    # Apart, no app is denied anything.
    assert not [g for g in PLAN if g.deny]


def test_only_the_bridge_writes_raw_events_and_workers_write_commands() -> None:
    assert _writers(T.raw) == {Role.BRIDGE}
    assert Role.BRIDGE not in _writers(T.commands)
    assert {Role.PROCESSOR, Role.ERASURE} <= _writers(T.commands)


def test_no_role_may_alter_or_delete_topics_and_prefixes_are_the_app_ids_only() -> None:
    assert not [g for g in PLAN if g.operation in ("ALTER", "DELETE")]
    assert not [g for g in PLAN if g.resource == "cluster"]
    prefixed_topics = {g.name for g in PLAN if g.prefixed and g.resource == "topic"}
    assert prefixed_topics == {"facegate-processor", "facegate-erasure"}
    assert Grant(Role.BRIDGE, "WRITE", "topic", "facegate", prefixed=True) not in PLAN


def test_passwords_are_made_once_and_kept_0600(tmp_path: Path) -> None:
    first = ensure_passwords(tmp_path)
    assert set(first) == set(Role) and len(set(first.values())) == len(Role)
    assert stat.S_IMODE(users_path(tmp_path).stat().st_mode) == 0o600
    assert ensure_passwords(tmp_path) == first


def test_clients_log_in_as_their_role_only_with_auth_on(tmp_path: Path) -> None:
    off = BrokerSettings(state_dir=tmp_path, kafka_auth=False)
    assert kafka_python_auth(off, Role.OFFICE) == {} == confluent_auth(off, Role.BRIDGE)
    assert login(off, Role.PROCESSOR) is None
    on = BrokerSettings(state_dir=tmp_path, kafka_auth=True)
    with pytest.raises(ConfigError, match="facegate stack up"):
        kafka_python_auth(on, Role.OFFICE)
    secrets = ensure_passwords(tmp_path)
    kp = kafka_python_auth(on, Role.OFFICE)
    assert kp["sasl_plain_username"] == "facegate-office"
    assert kp["sasl_plain_password"] == secrets[Role.OFFICE]
    assert kp["sasl_mechanism"] == "SCRAM-SHA-512"
    ck = confluent_auth(on, Role.BRIDGE)
    assert (ck["sasl.username"], ck["sasl.password"]) == ("facegate-bridge", secrets[Role.BRIDGE])
    assert login(on, Role.PROCESSOR) == ("facegate-processor", secrets[Role.PROCESSOR])


def test_client_config_names_the_servers_and_the_role_for_each_library(tmp_path: Path) -> None:
    off = BrokerSettings(state_dir=tmp_path, kafka_port=19092, kafka_auth=False)
    assert client_config(Role.WEB, off) == {"bootstrap_servers": "127.0.0.1:19092"}
    assert client_config(Role.WEB, off, "confluent") == {"bootstrap.servers": "127.0.0.1:19092"}
    on = BrokerSettings(state_dir=tmp_path, kafka_port=19092, kafka_auth=True)
    secrets = ensure_passwords(tmp_path)
    aio = client_config(Role.STATUS, on, "aiokafka")
    assert aio["bootstrap_servers"] == "127.0.0.1:19092"
    assert (aio["sasl_plain_username"], aio["sasl_plain_password"]) == (
        "facegate-status", secrets[Role.STATUS]
    )
    rd = client_config(Role.WEB, on, "confluent")
    assert (rd["sasl.username"], rd["security.protocol"]) == ("facegate-web", "SASL_PLAINTEXT")


def test_broker_properties_leave_no_plaintext_listener(tmp_path: Path) -> None:
    lines = [
        "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
        "advertised.listeners=PLAINTEXT://127.0.0.1:9092",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    ]
    secrets = ensure_passwords(tmp_path)
    props = dict(line.split("=", 1) for line in with_auth(lines, secrets))
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert "PLAINTEXT:PLAINTEXT" not in props["listener.security.protocol.map"]
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:facegate-broker;User:facegate-admin"
    assert "ANONYMOUS" not in "\n".join(props.values())
    args = scram_format_args(secrets)
    assert args.count("--add-scram") == len(Role)
    assert f"SCRAM-SHA-512=[name=facegate-bridge,password={secrets[Role.BRIDGE]}]" in args
