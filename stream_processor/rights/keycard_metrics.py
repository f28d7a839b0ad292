"""Key-card metrics, read from the rights database at scrape time.

Labels tenant and site only, never a pseudonym::

    facegate_keycard_requests_total{tenant,site}            requests made
    facegate_keycard_requests_fulfilled_total{tenant,site}  cards handed over
    facegate_keycard_requests_open{tenant,site}             open now
    facegate_keycard_request_oldest_open_age_seconds{tenant,site}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from stream_processor.rights.keycard_model import OpenSummary


class KeycardCounts(Protocol):
    """What the metrics read of the key-card book (``KeycardBook`` has it)."""

    def totals(self) -> Iterator[tuple[str, str, int, int]]: ...

    def open_summary(self) -> list[OpenSummary]: ...


class KeycardCollector(Collector):
    """Reads the counts from the database at scrape time, so requests made by
    any process (CLI, web) are counted once, and gauges are never stale."""

    def __init__(self, book: KeycardCounts) -> None:
        self._book = book

    def collect(self) -> Iterable[Metric]:
        total = CounterMetricFamily(
            "facegate_keycard_requests", "key-card requests made", labels=["tenant", "site"]
        )
        fulfilled = CounterMetricFamily(
            "facegate_keycard_requests_fulfilled",
            "key-card requests fulfilled",
            labels=["tenant", "site"],
        )
        open_ = GaugeMetricFamily(
            "facegate_keycard_requests_open",
            "key-card requests not yet fulfilled",
            labels=["tenant", "site"],
        )
        oldest = GaugeMetricFamily(
            "facegate_keycard_request_oldest_open_age_seconds",
            "age of the oldest open key-card request",
            labels=["tenant", "site"],
        )
        seen: set[tuple[str, str]] = set()
        for tenant, site, n, f in self._book.totals():
            total.add_metric([tenant, site], n)
            fulfilled.add_metric([tenant, site], f)
            seen.add((tenant, site))
        summaries = {(s.tenant, s.site): s for s in self._book.open_summary()}
        for key in sorted(seen):
            s = summaries.get(key)
            open_.add_metric(list(key), s.open if s else 0)
            oldest.add_metric(list(key), s.oldest_age_s if s else 0.0)
        return [total, fulfilled, open_, oldest]


def register_keycard_metrics(book: KeycardCounts, registry: CollectorRegistry) -> KeycardCollector:
    collector = KeycardCollector(book)
    registry.register(collector)
    return collector


__all__ = ["KeycardCollector", "KeycardCounts", "register_keycard_metrics"]
