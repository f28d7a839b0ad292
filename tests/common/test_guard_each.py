"""``quarantine.guard_each``: every record of a stream goes through ``guard`` in order,
with its own coordinates, and ``keep_raw=False`` keeps every byte out of its dead letter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from stream_processor.dead_letter import decode_dead_letter
from stream_processor.quarantine import (
    ConsumerMetrics,
    Coordinates,
    Quarantine,
    Refusal,
    guard_each,
)

pytestmark = pytest.mark.unit

RAW = b'{"subject":"ps1_aaaaaaaaaaaaaaaaaaaaaaaaaa","purpose":"access_control"}'


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


@dataclass
class Event:
    message: Message
    key: bytes | None
    value: bytes | None


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


async def events(n: int) -> AsyncIterator[Event]:
    for offset in range(n):
        yield Event(Message("facegate.consent", 2, offset), f"k{offset}".encode(), RAW)


def run(keep_raw: bool) -> tuple[list[tuple[bytes | None, Coordinates]], Sink]:
    taken: list[tuple[bytes | None, Coordinates]] = []
    sink = Sink()

    async def take(key: bytes | None, value: bytes | None, at: Coordinates) -> Refusal | None:
        taken.append((key, at))
        return Refusal("bad_key", "refused") if at.offset == 1 else None

    q = Quarantine("processor", ConsumerMetrics(CollectorRegistry()), clock=lambda: 1.0)
    asyncio.run(guard_each(events(3), take, q, sink, keep_raw=keep_raw))
    return taken, sink


def test_every_record_is_taken_in_order_with_its_coordinates() -> None:
    taken, sink = run(keep_raw=True)
    assert taken == [(f"k{i}".encode(), Coordinates("facegate.consent", 2, i)) for i in range(3)]
    ((key, value),) = sink.sent
    letter = decode_dead_letter(value)
    assert key == b"bad_key"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "facegate.consent", 2, 1,
    )  # fmt: skip
    assert letter.raw_len == len(RAW)


def test_keep_raw_false_keeps_every_byte_out_of_the_dead_letter() -> None:
    _, sink = run(keep_raw=False)
    ((_, value),) = sink.sent
    letter = decode_dead_letter(value)
    assert letter.raw_len == 0 and letter.fields_seen == []
    assert b"ps1_" not in value
