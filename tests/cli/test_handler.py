"""What the entry point's handler says for each kind of failure, and with which exit code."""

from __future__ import annotations

import logging

import pytest

from edge_agent.errors import ConfigError as EdgeConfigError
from edge_agent.errors import FacegateError, InvalidInput, PublishError
from stream_processor.cli.handler import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_UNAVAILABLE,
    NOISY_LOGGERS,
    STACK_HINT,
    quiet_client_loggers,
    translate,
)
from stream_processor.errors import BrokerError, StackError

pytestmark = pytest.mark.unit


def test_every_error_of_both_packages_has_the_one_root() -> None:
    from edge_agent.wire.strict import PatternError
    from stream_processor.audit.cosign import WitnessRefused
    from stream_processor.audit.errors import NotCanonical
    from stream_processor.audit.note import NoteError
    from stream_processor.bridge.mqtt_link import ConnectionLost, ConnectRefused
    from stream_processor.bridge.mqtt_props import ProtocolError
    from stream_processor.processor.writer import StoreWriterFailed
    from stream_processor.rights.keycards import KeycardError
    from stream_processor.store.base import StoreDataError, StoreUnavailable
    from stream_processor.web.errors import ApiError
    from stream_processor.web.tokens import TokenError
    from stream_processor.witness.client import LogUnavailable

    for cls in (PatternError, NotCanonical, ProtocolError, StoreWriterFailed, KeycardError,
                EdgeConfigError, StackError, InvalidInput, WitnessRefused, NoteError,
                ConnectionLost, ConnectRefused, StoreDataError, StoreUnavailable, ApiError,
                TokenError, LogUnavailable):  # fmt: skip
        assert issubclass(cls, FacegateError), cls
    assert issubclass(InvalidInput, ValueError)  # validators may raise it


def test_a_root_error_is_its_message_on_one_line() -> None:
    assert translate(StackError("kafka exited\nsee the log")) == (
        "kafka exited; see the log", EXIT_ERROR
    )


def test_a_broker_error_says_how_to_start_the_stack() -> None:
    message, code = translate(BrokerError("cannot reach Kafka at 127.0.0.1:1"))
    assert message == f"cannot reach Kafka at 127.0.0.1:1; {STACK_HINT}"
    assert code == EXIT_UNAVAILABLE


def test_kafka_client_errors_become_broker_errors_even_when_wrapped() -> None:
    from aiokafka.errors import KafkaConnectionError
    from kafka.errors import NoBrokersAvailable

    assert translate(NoBrokersAvailable())[1] == EXIT_UNAVAILABLE
    try:
        try:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
        except KafkaConnectionError as exc:
            raise RuntimeError("worker crashed") from exc
    except RuntimeError as wrapped:
        message, code = translate(wrapped)
    assert code == EXIT_UNAVAILABLE and STACK_HINT in message and "bootstrap" in message
    assert translate(ConnectionRefusedError(111, "Connection refused"))[1] == EXIT_UNAVAILABLE


def test_a_gate_that_cannot_publish_is_unavailable_without_the_stack_hint() -> None:
    message, code = translate(PublishError("published nothing"))
    assert code == EXIT_UNAVAILABLE and STACK_HINT not in message


def test_a_retriable_error_exits_unavailable_and_a_final_one_does_not() -> None:
    from stream_processor.store.base import StoreDataError, StoreUnavailable

    assert translate(StoreUnavailable("database is locked")) == (
        "database is locked", EXIT_UNAVAILABLE
    )
    assert translate(StoreDataError("value out of range"))[1] == EXIT_ERROR


def test_a_file_error_names_the_file() -> None:
    message, code = translate(IsADirectoryError(21, "Is a directory", "/tmp/log"))
    assert (message, code) == ("Is a directory: /tmp/log", EXIT_ERROR)


def test_an_unexpected_exception_is_reported_as_a_bug() -> None:
    message, code = translate(ZeroDivisionError("division by zero"))
    assert code == EXIT_INTERNAL
    assert message.startswith("unexpected ZeroDivisionError: division by zero")
    assert "--debug" in message


def test_client_loggers_are_quiet_unless_debugging() -> None:
    quiet_client_loggers(debug=False)
    assert all(logging.getLogger(n).level == logging.CRITICAL for n in NOISY_LOGGERS)
    quiet_client_loggers(debug=True)
    assert all(logging.getLogger(n).level == logging.DEBUG for n in NOISY_LOGGERS)
    quiet_client_loggers(debug=False)


def test_a_database_that_is_down_is_named_as_such() -> None:
    import psycopg

    from tests.conftest import free_ports

    (port,) = free_ports(1)
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(f"host=127.0.0.1 port={port} dbname=x connect_timeout=5")
    message, code = translate(caught.value)
    assert message.startswith("cannot reach the database (") and f"port {port}" in message
    assert code == EXIT_UNAVAILABLE


def test_a_kafka_refusal_is_reported_as_kafkas() -> None:
    from kafka.errors import TopicAuthorizationFailedError, UnknownTopicOrPartitionError

    message, code = translate(TopicAuthorizationFailedError("facegate.policies"))
    assert message.startswith("Kafka refused: ") and "facegate.policies" in message
    assert code == EXIT_ERROR
    assert translate(UnknownTopicOrPartitionError("raw"))[1] == EXIT_UNAVAILABLE  # retriable
