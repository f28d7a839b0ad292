"""The re-send back-off schedule (pure): monotone while nothing is confirmed, capped,
jitter bounded, reset by progress. How the gate's confirmations follow it:
tests/edge/test_confirmations.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.uplink.resend import resend_delay_s, rounds_after
from edge_agent.uplink.settings import MqttSettings

timeouts = st.floats(0.5, 3600)
caps = st.floats(0.5, 86_400)
jitters = st.floats(0, 0.9)
draws = st.floats(0, 1, exclude_max=True)
rounds = st.integers(0, 10_000)


@given(rounds, timeouts, caps, jitters, draws)
def test_the_wait_grows_with_each_round_without_progress(
    r: int, timeout: float, cap: float, jitter: float, draw: float
) -> None:
    assert resend_delay_s(r, timeout, cap, jitter, draw) <= resend_delay_s(
        r + 1, timeout, cap, jitter, draw
    )


@given(rounds, timeouts, caps, jitters, draws)
def test_the_wait_is_capped_and_the_jitter_bounded(
    r: int, timeout: float, cap: float, jitter: float, draw: float
) -> None:
    full = resend_delay_s(r, timeout, cap, 0.0, 0.0)
    assert full <= max(cap, timeout)
    assert full >= timeout  # never re-sent faster than one timeout without jitter
    assert full == min(timeout * 2.0 ** min(r, 40), max(cap, timeout))
    jittered = resend_delay_s(r, timeout, cap, jitter, draw)
    assert (1 - jitter) * full - 1e-9 <= jittered <= full


@given(rounds, st.booleans())
def test_progress_starts_the_schedule_over(r: int, progressed: bool) -> None:
    after = rounds_after(r, progressed)
    assert after == (0 if progressed else r + 1)


@pytest.mark.parametrize(
    "args",
    [(-1, 1.0, 2.0, 0.1, 0.5), (0, 0.0, 2.0, 0.1, 0.5), (0, 1.0, 2.0, 1.0, 0.5),
     (0, 1.0, 2.0, 0.1, 1.0)],  # fmt: skip
)
def test_out_of_range_inputs_are_refused(args: tuple[int, float, float, float, float]) -> None:
    with pytest.raises(ValueError):
        resend_delay_s(*args)


def test_settings_refuse_a_jitter_of_one_or_an_empty_window() -> None:
    base = {"username": "u", "password": "p"}
    assert MqttSettings.model_validate(base).resend_window >= 1
    for bad in ({"resend_jitter": 1.0}, {"resend_window": 0}, {"resend_backoff_cap_s": 0}):
        with pytest.raises(ValueError):
            MqttSettings.model_validate({**base, **bad})
