"""`facegate web serve` stops its Kafka views together on SIGTERM: each waits for its
own thread's current poll, so the stop takes the longest of those waits, not their sum."""

from __future__ import annotations

import threading
import time

import pytest

from stream_processor.cli.web import _Views

pytestmark = pytest.mark.unit


class _SlowFollower:
    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self.stopped = threading.Event()

    def stop(self) -> None:
        time.sleep(self.wait_s)  # a poll of Kafka in progress
        self.stopped.set()


def _views(followers: list[_SlowFollower]) -> _Views:
    return _Views(retention=None, retention_from="-", devices=None, consent=None,  # type: ignore[arg-type]
                  letters=None, followers=followers)  # type: ignore[arg-type]  # fmt: skip


def test_the_views_stop_together_and_every_one_is_stopped() -> None:
    followers = [_SlowFollower(1.0) for _ in range(4)]
    started = time.monotonic()
    _views(followers).stop()
    took = time.monotonic() - started
    assert all(f.stopped.is_set() for f in followers)
    assert took < 2.5, f"stopping four views that each wait 1 s took {took:.1f} s"


def test_no_views_is_a_no_op() -> None:
    _views([]).stop()
