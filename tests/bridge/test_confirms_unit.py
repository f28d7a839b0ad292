"""The bridge's delivery confirmations, as pure units: ranges, batching, what is confirmed."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.wire import encode_event
from edge_agent.wire.confirms import decode_confirmation
from stream_processor.bridge.confirms import Confirmer, seq_ranges
from stream_processor.bridge.validate import Accepted, Limits, Rejected, check_message
from tests.support.processor import make_event

TOPIC = "facegate/v1/acme/site-1/gate-1/cam-1/events"
LIMITS = Limits(4096, 300_000, 7 * 86_400_000)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@given(st.lists(st.integers(0, 2**53 - 1) | st.integers(0, 300), max_size=300))
def test_ranges_cover_exactly_the_numbers_disjoint_and_apart(seqs: list[int]) -> None:
    ranges = seq_ranges(seqs)
    covered = {s for low, high in ranges if high - low < 10_000 for s in range(low, high + 1)}
    assert sum(high - low + 1 for low, high in ranges) == len(set(seqs))
    assert covered <= set(seqs)
    for (_, h1), (l2, _) in zip(ranges, ranges[1:], strict=False):
        assert h1 + 1 < l2  # sorted, and adjacent ones merged


def test_one_message_per_device_and_range_at_most_once_per_interval() -> None:
    clock = Clock()
    c = Confirmer(0.2, clock)
    for seq in [*range(0, 100), *range(150, 160)]:
        c.add(TOPIC, seq)
    c.add(TOPIC.replace("cam-1", "cam-2"), 7)
    assert c.due()
    sent = c.take()
    got = [(t, decode_confirmation(p)) for t, p in sent]
    assert [(t.rsplit("/", 2)[1], m.from_seq, m.through_seq) for t, m in got] == [
        ("cam-1", 0, 99), ("cam-1", 150, 159), ("cam-2", 7, 7),
    ]
    assert all(t.endswith("/confirms") for t, _ in got)
    assert got[0][1].device == "cam-1" and got[2][1].device == "cam-2"
    c.add(TOPIC, 160)
    assert not c.due()  # the interval has not passed
    clock.now += 0.2
    assert c.due() and len(c.take()) == 1
    assert not c.due()  # nothing pending


def test_an_accepted_ack_is_confirmed_by_its_command_id() -> None:
    clock = Clock()
    c = Confirmer(0.2, clock)
    command_id = "01a24a48-1e8f-7000-9093-8e90cb77d7fa"
    c.add_ack(TOPIC.replace("/events", "/acks"), command_id)
    assert c.due()
    [(topic, payload)] = c.take()
    message = decode_confirmation(payload)
    assert topic == TOPIC.replace("/events", "/confirms")
    assert (message.command_id, message.from_seq, message.device) == (command_id, None, "cam-1")


def test_a_gappy_device_gets_a_bounded_round_and_the_rest_next_time() -> None:
    clock = Clock()
    c = Confirmer(0.1, clock, max_ranges=4)
    for seq in range(0, 20, 2):  # ten ranges of one
        c.add(TOPIC, seq)
    assert len(c.take()) == 4 and len(c) == 6
    clock.now += 0.1
    assert len(c.take()) == 4
    clock.now += 0.1
    assert [decode_confirmation(p).from_seq for _, p in c.take()] == [16, 18]


def test_accepted_and_dead_lettered_events_carry_their_seq_for_confirmation() -> None:
    event = msgspec.structs.replace(make_event("pin", site="site-1"), seq=77)
    now = event.occurred_at_ms
    ok = check_message(TOPIC, encode_event(event), LIMITS, now)
    assert isinstance(ok, Accepted) and ok.seq == 77
    skewed = check_message(TOPIC, encode_event(event), LIMITS, now - 3_600_000)
    assert isinstance(skewed, Rejected) and skewed.reason == "clock_skew" and skewed.seq == 77
    other = check_message(TOPIC.replace("cam-1", "cam-2"), encode_event(event), LIMITS, now)
    assert isinstance(other, Rejected) and other.reason == "identity_mismatch"
    garbage = check_message(TOPIC, json.dumps({"seq": 5}).encode(), LIMITS, now)
    assert isinstance(garbage, Rejected) and garbage.seq == -1  # nothing to confirm
