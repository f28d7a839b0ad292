"""The end-to-end benchmark's saturation rule and per-step arithmetic (pure units)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _pipeline import percentiles  # noqa: E402
from _pipeline_steps import Step, saturated  # noqa: E402


def step(offered: float, published: int, stored: int, backlog: int, expected: int = 0) -> Step:
    return Step("pipeline", "sqlite", offered, 10.0, published, expected or published, 0, 0,
                {"bridge": 1.0}, backlog, stored)  # fmt: skip


def test_a_step_that_keeps_up_is_not_saturation() -> None:
    assert not saturated([step(5000, 50_000, 50_000, 0)])
    # A latency tail (under two seconds of load behind) is not saturation either.
    assert not saturated([step(5000, 50_000, 44_000, 6_000)])


def test_publishers_held_back_by_back_pressure_is_saturation() -> None:
    assert saturated([step(20_000, 110_000, 110_000, 0)])


def test_stored_rate_falling_behind_is_saturation() -> None:
    assert saturated([step(5000, 50_000, 30_000, 20_000)])


def test_a_backlog_growing_two_steps_running_is_saturation() -> None:
    history = [step(5000, 50_000, 50_000, 100), step(6000, 60_000, 60_000, 4_000),
               step(7000, 70_000, 70_000, 12_000)]  # fmt: skip
    assert saturated(history)


def test_stored_rate_counts_events_the_policy_drops() -> None:
    # 90 % of events are stored by the policy: 9,000 rows in 10 s are 10,000 events/s.
    s = step(10_000, 100_000, 90_000, 0, expected=90_000)
    assert s.stored_rate == 10_000
    assert s.cpu_per_1k() == {"bridge": 1.0 / 100}


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=200))
def test_percentiles_are_ordered_values_of_the_sample(values: list[int]) -> None:
    p = percentiles(values)
    assert p["p50"] <= p["p95"] <= p["p99"] <= p["max"] == max(values)
    assert {p["p50"], p["p95"], p["p99"]} <= set(map(float, values))
