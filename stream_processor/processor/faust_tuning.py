"""Faust settings that matter for throughput (measured in benchmarks/processor_bench.py)."""

from __future__ import annotations

from typing import Any

from faust.sensors import Monitor


class LeanMonitor(Monitor):
    """Faust's monitor without its per-message bookkeeping.

    The default monitor records every message and stream event in Python
    dictionaries; at tens of thousands of events a second that is a measurable
    share of a worker's CPU, and nothing here reads it (facegate exports its own
    Prometheus metrics). Commit, send and rebalance hooks are kept.
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None
