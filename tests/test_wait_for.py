"""The suite's ``wait_for``: a timeout says what it waited for and, when asked, what
it saw last, so that a CI failure is diagnosable from its log alone; a state that
arrives during the last sleep still counts."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import wait_for


def test_a_timeout_names_what_and_shows_what_was_seen_last() -> None:
    polls = itertools.count()
    with pytest.raises(AssertionError) as failed:
        wait_for(lambda: next(polls) < 0, 0.05, "the events stored", interval_s=0.01,
                 seen=lambda: {"stored": 3, "refused": 1})  # fmt: skip
    message = str(failed.value)
    assert message.startswith("timed out after 0.05s waiting for the events stored")
    assert message.endswith("; last seen: {'stored': 3, 'refused': 1}")


def test_a_failing_look_at_what_was_seen_does_not_hide_the_timeout() -> None:
    def broken() -> object:
        raise OSError("store gone")

    with pytest.raises(AssertionError) as failed:
        wait_for(lambda: False, 0.02, "the store", interval_s=0.01, seen=broken)
    assert "timed out after 0.02s waiting for the store" in str(failed.value)
    assert "reading what was seen failed: OSError('store gone')" in str(failed.value)


def test_a_state_that_came_during_the_last_sleep_counts() -> None:
    polls = itertools.count()
    # False while polling, true at the look after the deadline (one sleep outlasts it).
    wait_for(lambda: next(polls) >= 1, 0.01, "the late state", interval_s=0.05)


def test_without_seen_the_message_is_as_before() -> None:
    with pytest.raises(AssertionError, match=r"^timed out after 0.01s waiting for x$"):
        wait_for(lambda: False, 0.01, "x", interval_s=0.005)
