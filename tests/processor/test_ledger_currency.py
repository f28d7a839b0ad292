"""The rule that a batch is decided only on current ledger views: the pure checks
(Hypothesis) and the gate's waiting with a fake ledger follower (no broker)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pytest import approx

from stream_processor.processor.currency import (
    GateTiming,
    LedgerGate,
    Observed,
    ends_cover,
    view_current,
)
from stream_processor.processor.ingest import KafkaInput
from stream_processor.processor.metrics import ProcessorMetrics

ends_st = st.dictionaries(st.integers(0, 5), st.integers(0, 1_000), max_size=6)


@given(ends_st, st.data())
def test_current_iff_every_written_record_is_applied(
    ends: dict[int, int], data: st.DataObject
) -> None:
    positions = {p: data.draw(st.integers(-1, 1_100)) for p in ends}
    # A record at offset o < end exists for every o; the view holds it iff o <= position.
    missing = any(o > positions[p] for p, end in ends.items() for o in range(end))
    assert view_current(positions, ends) is (not missing)


@given(ends_st, st.data())
def test_current_stays_current_as_the_view_reads_on(
    ends: dict[int, int], data: st.DataObject
) -> None:
    positions = {p: max(end - 1, -1) for p, end in ends.items()}
    assert view_current(positions, ends)
    later = {p: pos + data.draw(st.integers(0, 50)) for p, pos in positions.items()}
    earlier_ends = {p: data.draw(st.integers(0, end)) for p, end in ends.items()}
    assert view_current(later, ends) and view_current(positions, earlier_ends)


@given(ends_st.filter(lambda e: any(v > 0 for v in e.values())))
def test_a_view_that_read_nothing_is_current_for_no_written_ledger(ends: dict[int, int]) -> None:
    assert not view_current({}, ends)


@given(
    st.floats(0, 1e6), st.floats(0, 1e6), st.integers(0, 2**40), st.integers(0, 2**40),
    st.integers(0, 10_000),
)  # fmt: skip
def test_ends_cover_a_batch_only_if_read_after_its_fetch_or_after_its_records(
    observed_at: float, fetched_at: float, at_ms: int, newest_ms: int, skew_ms: int
) -> None:
    covered = ends_cover(Observed({}, observed_at, at_ms), fetched_at, newest_ms, skew_ms)
    assert covered is (observed_at >= fetched_at or at_ms >= newest_ms + skew_ms)
    # Never yet observed: nothing is covered.
    assert not ends_cover(Observed(), fetched_at, newest_ms, skew_ms)


class Control:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    async def keep_alive(self) -> None:
        self.calls.append("keep_alive")


class Ledger:
    """A ledger topic and a worker's follower of it that may be held back."""

    def __init__(self, end: int) -> None:
        self.end = end
        self.applied = -1
        self.readable = True
        self.reads = 0

    async def end_offsets(self, topic: str) -> dict[int, int]:
        self.reads += 1
        if not self.readable:
            raise TimeoutError("leader not available")
        return {0: self.end}

    def position(self, ledger: str, partition: int) -> int:
        return self.applied


def gate(ledger: Ledger, registry: CollectorRegistry, pause_after_s: float = 60.0) -> LedgerGate:
    timing = GateTiming(poll_s=0.001, pause_after_s=pause_after_s, keep_alive_s=0.01)
    return LedgerGate(
        ledger.end_offsets, ledger.position, {"consent": "c"}, ProcessorMetrics(registry),
        timing=timing,
    )  # fmt: skip


async def held_until(task: asyncio.Task[None], ledger: Ledger, seconds: float) -> None:
    await asyncio.sleep(seconds)
    assert not task.done(), "decided on a view that had not read the ledger's end"
    ledger.applied = ledger.end - 1
    ledger.readable = True
    await asyncio.wait_for(task, 2.0)


def test_the_gate_waits_for_a_lagging_follower_and_pauses_input_when_long() -> None:
    async def run() -> tuple[Control, CollectorRegistry]:
        ledger, registry, control = Ledger(end=10), CollectorRegistry(), Control()
        g = gate(ledger, registry, pause_after_s=0.05)
        ledger.applied = 3  # the follower has read 4 of 10 records
        task = asyncio.ensure_future(g.wait_current(0.0, 0, control))
        await held_until(task, ledger, 0.3)
        return control, registry

    control, registry = asyncio.run(run())
    assert control.calls[0] == "pause" and control.calls[-1] == "resume"
    assert "keep_alive" in control.calls
    assert (
        registry.get_sample_value("facegate_processor_ledger_waits_total", {"ledger": "consent"})
        == 1
    )
    assert registry.get_sample_value("facegate_processor_ledger_stale") == 0


def test_an_unreadable_ledger_holds_the_batch_it_is_never_decided_on_a_guess() -> None:
    async def run() -> Ledger:
        ledger = Ledger(end=5)
        ledger.readable = False
        task = asyncio.ensure_future(
            gate(ledger, CollectorRegistry()).wait_current(0.0, 0, Control())
        )
        await held_until(task, ledger, 0.2)
        return ledger

    assert asyncio.run(run()).reads > 2  # it kept asking


def test_a_backlog_older_than_the_last_look_costs_no_request() -> None:
    async def run() -> Ledger:
        ledger = Ledger(end=7)
        ledger.applied = 6
        g, control = gate(ledger, CollectorRegistry()), Control()
        loop = asyncio.get_running_loop()
        await g.wait_current(loop.time(), 0, control)
        for _ in range(100):  # records stamped at epoch 1000 s: long before the last look
            await g.wait_current(float("inf"), 1_000_000, control)
        assert control.calls == []
        return ledger

    assert asyncio.run(run()).reads == 1


def test_a_batch_fetched_after_the_last_look_looks_again_and_waits_for_the_new_record() -> None:
    async def run() -> None:
        ledger = Ledger(end=7)
        ledger.applied = 6
        g = gate(ledger, CollectorRegistry())
        await g.wait_current(0.0, 0, Control())
        ledger.end = 8  # a grant written just before the batch's events
        task = asyncio.ensure_future(g.wait_current(float("inf"), 2**62, Control()))
        await held_until(task, ledger, 0.1)

    asyncio.run(run())


def test_every_look_at_the_ledgers_ends_is_timed_read_or_not() -> None:
    """A slow look delays every batch even when no view lags (no wait is counted then):
    the look's own histogram is what shows it."""
    now = [100.0]
    ledger, registry = Ledger(end=3), CollectorRegistry()
    ledger.applied = 2

    async def slow_end_offsets(topic: str) -> dict[int, int]:
        now[0] += 0.4  # a ListOffsets held behind a fetch long-poll
        return await ledger.end_offsets(topic)

    g = LedgerGate(
        slow_end_offsets, ledger.position, {"consent": "c"}, ProcessorMetrics(registry),
        monotonic=lambda: now[0],
    )  # fmt: skip
    assert asyncio.run(g.is_current(float("inf"), 2**62))
    ledger.readable = False
    assert not asyncio.run(g.is_current(float("inf"), 2**62))
    assert registry.get_sample_value("facegate_processor_ledger_look_seconds_count") == 2
    assert registry.get_sample_value("facegate_processor_ledger_look_seconds_sum") == approx(0.8)
    assert (
        registry.get_sample_value("facegate_processor_ledger_waits_total", {"ledger": "consent"})
        is None
    )


class Consumer:
    """The pause/resume surface of an AIOKafkaConsumer."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    def assignment(self) -> set[str]:
        return {"raw-0", "raw-1"}

    def paused(self) -> set[str]:
        return set(self.held)

    def pause(self, *tps: str) -> None:
        self.held |= set(tps)

    def resume(self, *tps: str) -> None:
        self.held -= set(tps)


def test_input_stays_paused_until_both_the_store_and_the_gate_have_resumed() -> None:
    consumer = Consumer()
    source = KafkaInput(consumer)
    source.pause()  # the store is down
    source.pause()  # and a ledger view is behind
    source.resume()  # the view caught up: the store is still down
    assert consumer.held == {"raw-0", "raw-1"}
    source.resume()
    assert consumer.held == set()
