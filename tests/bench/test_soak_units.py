"""The soak's own logic without brokers: the fault schedule, the exactly-once verdict
(also read from a real SQLite store of the project's schema), the memory slope that a
restart must neither hide nor fake, and the fault runner."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))  # the benchmarks import each other as scripts

from soak_check import Expected, Found, StoreView, verdict  # noqa: E402
from soak_faults import KINDS, Fault, FaultRunner, default_schedule, parse_schedule  # noqa: E402
from soak_series import (  # noqa: E402
    MemoryRule,
    Sample,
    Series,
    memory_summary,
    pooled_slope_per_hour,
)

pytestmark = pytest.mark.unit

KEY = ("demo", "site-00", "gate-0", "cam-1")


# -- the schedule ------------------------------------------------------------------
def test_default_schedule_spreads_the_four_faults_inside_the_run() -> None:
    faults = parse_schedule("default", 3600)
    assert [f.kind for f in faults] == list(KINDS)
    assert all(0 < f.at_s < 3600 for f in faults)
    assert faults == default_schedule(3600)
    assert parse_schedule("none", 3600) == []


def test_explicit_schedule_is_sorted_and_may_repeat_a_kind() -> None:
    got = parse_schedule("kafka@200, worker@50,worker@100", 300)
    assert got == [Fault(50, "worker"), Fault(100, "worker"), Fault(200, "kafka")]


@pytest.mark.parametrize(
    "spec",
    ["disk@10", "worker", "worker@", "worker@x", "worker@0", "worker@300", "worker@-5",
     "bridge@10,,kafka@20"],
)  # fmt: skip
def test_bad_schedule_is_a_clear_usage_error(spec: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_schedule(spec, 300)


@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(1, 3599)), min_size=1))
def test_any_valid_schedule_round_trips(items: list[tuple[str, int]]) -> None:
    spec = ",".join(f"{k}@{t}" for k, t in items)
    assert parse_schedule(spec, 3600) == sorted(Fault(float(t), k) for k, t in items)


# -- exactly-once -------------------------------------------------------------------
def test_every_event_once_is_ok() -> None:
    v = verdict({KEY: Expected(100, 199, 100)}, {KEY: Found(100, 100, 100, 100, 199)})
    assert v.ok and v.lost == 0 and v.gaps_checked


def test_a_device_with_nothing_stored_loses_all_it_should_have() -> None:
    v = verdict({KEY: Expected(1, 10, 8)}, {})
    assert (v.lost, v.ok, v.devices_with_problems) == (8, False, ["/".join(KEY)])


def test_duplicates_by_seq_and_by_event_id_are_counted_apart() -> None:
    v = verdict({KEY: Expected(1, 10, 10)}, {KEY: Found(12, 10, 11, 1, 10)})
    assert (v.lost, v.duplicated_seq, v.duplicated_id) == (0, 2, 1)
    assert not v.ok


def test_rows_of_a_device_that_never_published_or_outside_its_seqs_are_unexpected() -> None:
    other = ("demo", "site-09", "gate-9", "cam-1")
    v = verdict({KEY: Expected(1, 10, 10)},
                {KEY: Found(10, 10, 10, 0, 9), other: Found(3, 3, 3, 1, 3)})  # fmt: skip
    assert v.unexpected == 1 + 3 and not v.ok


@settings(max_examples=200)
@given(
    n=st.integers(1, 300),
    discarded=st.sets(st.integers(0, 299)),
    lost=st.sets(st.integers(0, 299)),
    dups=st.lists(st.integers(0, 299), max_size=20),
)
def test_verdict_counts_exactly_what_was_lost_and_duplicated(
    n: int, discarded: set[int], lost: set[int], dups: list[int]
) -> None:
    """A device publishes seqs 1000..1000+n-1; the policy stores all but ``discarded``;
    the store misses ``lost`` of those and has ``dups`` twice (a replay with a new id)."""
    seqs = [1000 + i for i in range(n)]
    should = [s for i, s in enumerate(seqs) if i not in discarded]
    kept = [s for i, s in enumerate(seqs) if i not in discarded and i not in lost]
    again = [1000 + i for i in dups if i < n and 1000 + i in kept]
    rows = kept + again
    found = {KEY: Found(len(rows), len(kept), len(rows), min(rows), max(rows))} if rows else {}
    v = verdict({KEY: Expected(seqs[0], seqs[-1], len(should))}, found)
    assert v.lost == len(should) - len(kept)
    assert v.duplicated_seq == len(again)
    assert v.unexpected == 0
    assert v.ok == (not again and len(kept) == len(should))


def test_store_view_counts_from_the_project_store(tmp_path: Path) -> None:
    from stream_processor.store.sqlite import SqliteEventStore
    from tests.support.store import row

    path = tmp_path / "events.sqlite"
    store = SqliteEventStore(path)
    try:
        store.put_many([row(i, tenant="demo", device="d1") for i in range(1, 6)])
        store.put_many([row(10 + i, seq=i, tenant="demo", device="d1") for i in (2, 3)])
        store.put_many([row(20, tenant="other", device="d1")])
    finally:
        store.close()
    view = StoreView(sqlite_path=path)
    assert view.per_device("demo") == {("demo", "s1", "g1", "d1"): Found(7, 5, 7, 1, 5)}
    assert view.rows("demo") == 7
    assert view.stored_by_aggregates("demo") == 0  # put_many adds no per-minute counts
    assert StoreView(sqlite_path=tmp_path / "missing.sqlite").rows("demo") == 0


# -- memory -------------------------------------------------------------------------
def _series(points: Sequence[tuple[float, float, int]]) -> Series:
    s = Series(lambda: {}, lambda: 0, lambda: None)
    s.samples = [Sample(t, {"p": v}, {"p": pid}, 0, None, 0.0) for t, v, pid in points]
    return s


def test_steady_growth_is_measured_in_mib_per_hour() -> None:
    pts = [(t, 100 + t / 60, 1) for t in range(0, 3601, 10)]  # +1 MiB a minute
    assert pooled_slope_per_hour([[(t, v) for t, v, _ in pts]]) == pytest.approx(60)
    m = memory_summary(_series(pts), MemoryRule(1800, 120, 20, 0.05))["p"]
    assert m["flat"] is False and m["slope_mib_per_h"] == pytest.approx(60, abs=0.5)


def test_a_restart_drop_is_not_read_as_flat_memory() -> None:
    """Two lifetimes, each growing 1 MiB/min, the second starting low: one fit over
    both would see little growth; the per-lifetime fit sees it all."""
    pts = [(t, 100 + t / 60, 1) for t in range(1800, 2700, 10)]
    pts += [(t, 100 + (t - 2700) / 60, 2) for t in range(2700, 3601, 10)]
    m = memory_summary(_series(pts), MemoryRule(1800, 0, 20, 0.05))["p"]
    assert m["slope_mib_per_h"] == pytest.approx(60, abs=0.5) and m["lifetimes"] == 2


def test_flat_lifetimes_with_a_restart_jump_are_flat() -> None:
    pts = [(t, 300.0, 1) for t in range(1800, 2700, 10)]
    pts += [(t, 120.0 if t < 2820 else 400.0, 2) for t in range(2700, 3601, 10)]
    m = memory_summary(_series(pts), MemoryRule(1800, 120, 20, 0.05))["p"]
    assert m["flat"] is True and m["slope_mib_per_h"] == pytest.approx(0)


def test_a_short_run_is_not_judged() -> None:
    pts = [(t, 100 + t, 1) for t in range(0, 301, 10)]
    assert memory_summary(_series(pts), MemoryRule(150, 30, 20, 0.05))["p"]["flat"] is None


def _stepped(
    steps: dict[float, float], pid_at: float | None = None
) -> list[tuple[float, float, int]]:
    """An hour of 50 MiB, flat but for a rise of ``steps[t]`` MiB at each fault time t
    (within 30 s, as a backlog fills); a new pid from ``pid_at`` on."""
    pts = []
    for t in range(0, 3601, 10):
        level = 50.0 + sum(min(1.0, max(0.0, (t - f) / 30)) * mib for f, mib in steps.items())
        pts.append((float(t), level, 2 if pid_at is not None and t >= pid_at else 1))
    return pts


FAULTS = [540.0, 1260.0, 1980.0, 2700.0]


def test_a_step_at_a_fault_within_its_stated_bound_is_flat() -> None:
    """Mosquitto's 54 MiB at the Kafka restart: the old per-lifetime line read it as
    133 MiB/h; flat between faults, it is a step, judged against the queue's bound."""
    pts = _stepped({2700.0: 40.0})
    old = memory_summary(_series(pts), MemoryRule(1800, 120, 20, 0.05))["p"]
    assert old["flat"] is False
    rule = MemoryRule(1800, 120, 20, 0.05, faults_s=FAULTS, step_mib={"p": 93.0})
    m = memory_summary(_series(pts), rule)["p"]
    assert m["flat"] is True and m["steps_mib"] == [0.0, 0.0, 0.0, 40.0]
    assert m["slope_mib_per_h"] == pytest.approx(0, abs=0.5)


def test_a_step_past_its_bound_is_not_flat() -> None:
    rule = MemoryRule(1800, 120, 20, 0.05, faults_s=FAULTS, step_mib={"p": 30.0})
    assert memory_summary(_series(_stepped({2700.0: 40.0})), rule)["p"]["flat"] is False


def test_steps_of_one_lifetime_add_up_against_the_bound() -> None:
    """Each 25 MiB step is within 30, their 100 MiB are not: a backlog's memory is
    reused by the next one, so a broker that keeps taking more is growing."""
    rule = MemoryRule(1800, 120, 20, 0.05, faults_s=FAULTS, step_mib={"p": 30.0})
    m = memory_summary(_series(_stepped(dict.fromkeys(FAULTS, 25.0))), rule)["p"]
    assert m["steps_mib"] == [25.0] * 4 and m["flat"] is False


def test_without_a_stated_bound_a_step_may_be_one_hour_of_allowed_growth() -> None:
    rule = MemoryRule(1800, 120, 20, 0.05, faults_s=FAULTS)
    assert memory_summary(_series(_stepped({2700.0: 15.0})), rule)["p"]["flat"] is True
    assert memory_summary(_series(_stepped({2700.0: 25.0})), rule)["p"]["flat"] is False


def test_growth_between_faults_is_still_growth() -> None:
    pts = [(t, 100 + t / 60, 1) for t in range(0, 3601, 10)]  # +60 MiB/h, faults or not
    rule = MemoryRule(1800, 120, 20, 0.05, faults_s=FAULTS, step_mib={"p": 1000.0})
    m = memory_summary(_series(pts), rule)["p"]
    assert m["flat"] is False and m["slope_mib_per_h"] == pytest.approx(60, abs=0.5)


def test_a_restart_at_a_fault_is_a_new_lifetime_not_a_step() -> None:
    """Mosquitto after its own kill -9 starts small: no step, and no drop either."""
    pts = [(t, v if t < 1980 else 12.0, pid) for t, v, pid in _stepped({540.0: 10.0}, 1980.0)]
    rule = MemoryRule(1800, 120, 20, 0.05, faults_s=FAULTS, step_mib={"p": 30.0})
    m = memory_summary(_series(pts), rule)["p"]
    assert m["lifetimes"] == 2 and m["steps_mib"] == [10.0, 0.0, 0.0] and m["flat"] is True


def test_memory_is_judged_by_anonymous_pages_where_they_were_sampled() -> None:
    """Kafka's mmapped log indexes grow its RSS with the log (page cache the kernel
    reclaims); the heap and native allocations are what must stay flat."""
    s = Series(lambda: {}, lambda: 0, lambda: None)
    s.samples = [
        Sample(t, {"k": 900 + t / 60}, {"k": 1}, 0, None, 0.0, {"k": 850.0})
        for t in range(0, 3601, 10)
    ]
    rule = MemoryRule(1800, 120, 20, 0.05)
    assert memory_summary(s, rule)["k"]["flat"] is True
    for x in s.samples:
        x.anon_mib["k"] = 850 + x.t_s / 30  # +120 MiB/h of heap: growth
    assert memory_summary(s, rule)["k"]["flat"] is False


def test_anonymous_memory_of_a_live_process_is_read() -> None:
    import os

    from soak_series import anon_bytes

    assert 0 < anon_bytes(os.getpid()) and anon_bytes(2**22 + 7) == 0


def test_a_stated_bound_judges_steps_of_the_whole_run_others_only_the_judged_half() -> None:
    """A worker filling its page cache early is not stepping at the early faults; a
    broker keeps what an early backlog took, so its stated bound sees every fault."""
    pts = _stepped({540.0: 20.0, 1260.0: 20.0})
    rule = MemoryRule(1800, 120, 20, 0.05, faults_s=FAULTS, step_mib={"broker": 30.0})
    assert memory_summary(_series(pts), rule)["p"]["flat"] is True
    s = Series(lambda: {}, lambda: 0, lambda: None)
    s.samples = [Sample(t, {"broker": v}, {"broker": pid}, 0, None, 0.0) for t, v, pid in pts]
    m = memory_summary(s, rule)["broker"]
    assert m["steps_mib"] == [20.0, 20.0, 0.0, 0.0] and m["flat"] is False


def test_simulator_step_bound_follows_what_its_devices_may_keep() -> None:
    from soak_report import SIMULATOR_BYTES_PER_PENDING, simulator_step_mib

    from edge_agent.simulate.load import LoadSpec

    assert simulator_step_mib(40, 1000) == pytest.approx(40 * 1000 * 500 / 2**20)
    assert simulator_step_mib(40) == pytest.approx(
        40 * LoadSpec.max_unconfirmed * SIMULATOR_BYTES_PER_PENDING / 2**20
    )


def test_mosquitto_step_bound_follows_its_configured_queue() -> None:
    from soak_report import MOSQUITTO_BYTES_PER_QUEUED, mosquitto_step_mib

    from stream_processor.stack.mosquitto import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES

    per_session = MAX_QUEUED_BYTES + MAX_QUEUED_MESSAGES * MOSQUITTO_BYTES_PER_QUEUED
    assert mosquitto_step_mib() == pytest.approx(per_session / 2**20)
    assert mosquitto_step_mib(2) == pytest.approx(2 * mosquitto_step_mib())
    assert 0 < mosquitto_step_mib() < 200  # bounded, and far below the machine's memory


@given(st.floats(-500, 500), st.floats(10, 2000), st.integers(2, 5))
def test_pooled_slope_recovers_any_line_whatever_the_intercepts(
    slope_h: float, base: float, lives: int
) -> None:
    segments = [
        [(float(t), base * (k + 1) + slope_h * t / 3600) for t in range(k * 600, k * 600 + 500, 20)]
        for k in range(lives)
    ]
    assert pooled_slope_per_hour(segments) == pytest.approx(slope_h, abs=1e-6)


# -- faults -------------------------------------------------------------------------
def test_fault_runner_runs_due_faults_in_order_and_keeps_going_after_a_failure() -> None:
    now = [0.0]
    ran: list[str] = []

    def fail() -> None:
        ran.append("bridge")
        raise OSError("port taken")

    runner = FaultRunner(
        [Fault(20, "bridge"), Fault(10, "worker"), Fault(90, "kafka")],
        {"worker": lambda: ran.append("worker"), "bridge": fail, "kafka": lambda: None},
        log=lambda _: None, clock=lambda: now[0],
    )  # fmt: skip
    now[0] = 30.0
    runner.run_due(0.0)
    assert ran == ["worker", "bridge"]
    assert [r.error for r in runner.done] == [None, "OSError: port taken"]
    assert [f.kind for f in runner.pending] == ["kafka"]
    runner.mark_flowing((31.0, 5), (41.0, 9))
    assert runner.done[0].flowing_s == 41.0 and runner.done[1].flowing_s is None


def test_a_fault_without_an_action_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="kafka"):
        FaultRunner([Fault(5, "kafka")], {"worker": lambda: None})
