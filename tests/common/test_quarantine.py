"""The shared quarantine rules: poison is dead-lettered with its coordinates and counted,
an outage is retried with back-off and never quarantined."""

from __future__ import annotations

import asyncio
import errno
import sqlite3

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from stream_processor.dead_letter import decode_dead_letter
from stream_processor.errors import BrokerError, StoreError
from stream_processor.quarantine import (
    Backoff,
    ConsumerMetrics,
    Coordinates,
    Failure,
    Quarantine,
    Refusal,
    classify,
    guard,
    guard_blocking,
)

pytestmark = pytest.mark.unit

AT = Coordinates("facegate.erasure", 0, 41)


class Sink:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.failures = failures

    async def send(self, key: bytes, value: bytes) -> None:
        self.send_blocking(key, value)

    def send_blocking(self, key: bytes, value: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise BrokerError("Kafka is down")
        self.sent.append((key, value))


class Blocking:
    def __init__(self, sink: Sink) -> None:
        self.send = sink.send_blocking


def make(keep_bytes: bool = True) -> tuple[Quarantine, CollectorRegistry, list[float]]:
    registry = CollectorRegistry()
    q = Quarantine("erasure_requests", ConsumerMetrics(registry), keep_bytes=keep_bytes,
                   clock=lambda: 1_800_000_000.0)  # fmt: skip
    return q, registry, []


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def quarantined(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value(
        "facegate_consumer_quarantined_total", {"consumer": "erasure_requests", "reason": reason}
    )
    return value or 0.0


def retries(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value(
        "facegate_consumer_outage_retries_total", {"consumer": "erasure_requests"}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (sqlite3.OperationalError("database is locked"), Failure.OUTAGE),
        (sqlite3.OperationalError("database or disk is full"), Failure.OUTAGE),
        (sqlite3.IntegrityError("NOT NULL constraint failed"), Failure.POISON),
        (OSError(errno.ENOSPC, "No space left on device"), Failure.OUTAGE),
        (ConnectionRefusedError(), Failure.OUTAGE),
        (BrokerError("down"), Failure.OUTAGE),
        (StoreError("cannot connect to PostgreSQL"), Failure.OUTAGE),
        (OverflowError("int too big to convert"), Failure.POISON),
        (ValueError("bad"), Failure.POISON),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid"), Failure.POISON),
        (KeyError("x"), Failure.POISON),
        (msgspec.ValidationError("Expected `int`"), Failure.POISON),
        (RuntimeError("?"), Failure.UNKNOWN),
    ],
)
def test_classify(exc: BaseException, kind: Failure) -> None:
    assert classify(exc) is kind


def test_classify_psycopg_by_dbapi_names() -> None:
    import psycopg

    assert classify(psycopg.OperationalError("server closed the connection")) is Failure.OUTAGE
    assert classify(psycopg.errors.NumericValueOutOfRange("out of range")) is Failure.POISON
    assert classify(psycopg.errors.UniqueViolation("dup")) is Failure.POISON


def test_an_outage_is_retried_with_backoff_and_never_quarantined() -> None:
    q, registry, slept = make()
    sink = Sink()
    calls: list[int] = []

    async def handle() -> Refusal | None:
        calls.append(1)
        if len(calls) < 4:
            raise sqlite3.OperationalError("disk I/O error")
        return None

    async def sleep(s: float) -> None:
        slept.append(s)

    assert run(guard(handle, b"{}", AT, q, sink, sleep)) is None
    assert len(calls) == 4 and slept == [0.5, 1.0, 2.0]
    assert sink.sent == [] and retries(registry) == 3
    waiting = registry.get_sample_value(
        "facegate_consumer_waiting_on_outage", {"consumer": "erasure_requests"}
    )
    assert waiting == 0


def test_backoff_is_capped() -> None:
    q = Quarantine("c", ConsumerMetrics(CollectorRegistry()), backoff=Backoff(1.0, 3.0))
    attempts = q.attempts()
    waits = [attempts.after(BrokerError("down")) for _ in range(5)]
    assert waits == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_poison_raised_is_dead_lettered_with_coordinates() -> None:
    q, registry, slept = make()
    sink = Sink()

    async def handle() -> Refusal | None:
        raise OverflowError("can't serialize ints > 2**64 - 1 (ps1_00ff00ff)")

    refusal = run(guard(handle, b'{"seq": 1}', AT, q, sink))
    assert refusal == Refusal("unprocessable", "erasure_requests raised OverflowError")
    ((key, value),) = sink.sent
    letter = decode_dead_letter(value)
    assert key == b"unprocessable"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "facegate.erasure", 0, 41,
    )  # fmt: skip
    assert letter.stage == "erasure_requests" and letter.received_at_ms == 1_800_000_000_000
    assert "ps1_" not in letter.detail  # the exception's message is never quoted
    assert (letter.raw_len, letter.fields_seen) == (len(b'{"seq": 1}'), ["seq"])
    assert quarantined(registry, "unprocessable") == 1 and retries(registry) == 0


def test_a_refusal_keeps_no_bytes_when_told() -> None:
    q, registry, _ = make(keep_bytes=False)
    sink = Sink()

    async def handle() -> Refusal | None:
        return Refusal("bad_json", "not JSON")

    run(guard(handle, b'{"subject":"resident-x"', AT, q, sink))
    letter = decode_dead_letter(sink.sent[0][1])
    assert letter.raw_len == 0 and letter.fields_seen == []
    assert (letter.reason, letter.detail) == ("bad_json", "not JSON")
    assert quarantined(registry, "bad_json") == 1


def test_an_unknown_error_is_tried_a_few_times_then_quarantined() -> None:
    q, registry, slept = make()
    sink = Sink()
    calls: list[int] = []

    async def handle() -> Refusal | None:
        calls.append(1)
        raise RuntimeError("always")

    async def sleep(s: float) -> None:
        slept.append(s)

    refusal = run(guard(handle, b"x", AT, q, sink, sleep))
    assert isinstance(refusal, Refusal) and len(calls) == 3 and len(slept) == 2
    assert quarantined(registry, "unprocessable") == 1


def test_a_failing_dead_letter_write_is_waited_out() -> None:
    q, registry, slept = make()
    sink = Sink(failures=2)

    async def handle() -> Refusal | None:
        return Refusal("invalid_field", "Expected `int`")

    async def sleep(s: float) -> None:
        slept.append(s)

    run(guard(handle, b"{}", AT, q, sink, sleep))
    assert len(sink.sent) == 1 and slept == [0.5, 1.0] and retries(registry) == 2
    assert quarantined(registry, "invalid_field") == 1


def test_guard_blocking_follows_the_same_rules() -> None:
    q, registry, slept = make()
    sink = Sink(failures=1)
    calls: list[int] = []

    def handle() -> Refusal | None:
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("audit log not writable")
        raise ValueError("no")

    refusal = guard_blocking(handle, b"{}", AT, q, Blocking(sink), slept.append)
    assert refusal is not None and refusal.reason == "unprocessable"
    assert len(calls) == 2 and slept == [0.5, 0.5] and len(sink.sent) == 1
