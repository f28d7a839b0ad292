"""The metric names the code exports, read from its metric definitions (the first
argument of every prometheus_client metric or metric family it constructs), with the
sample names Prometheus sees for each type."""

from __future__ import annotations

import re
from functools import cache

from tests.conftest import REPO

_DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|BatchHistogram|Summary|Info|Enum|"
    r"CounterMetricFamily|GaugeMetricFamily|HistogramMetricFamily|InfoMetricFamily)"
    r"\(\s*\"(facegate_[a-z0-9_]+)\""
)

_SAMPLES = {
    "Counter": ("_total",),
    "CounterMetricFamily": ("_total",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "BatchHistogram": ("_bucket", "_sum", "_count"),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count"),
    "Info": ("_info",),
    "InfoMetricFamily": ("_info",),
}

#: Series Prometheus itself adds to every scrape target.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def definitions() -> dict[str, str]:
    """``{metric name: constructor}`` over edge_agent/ and stream_processor/."""
    found: dict[str, str] = {}
    for package in ("edge_agent", "stream_processor"):
        for path in (REPO / package).rglob("*.py"):
            for kind, name in _DEFINITION.findall(path.read_text()):
                found[name] = kind
    return found


@cache
def exported_metric_names() -> frozenset[str]:
    names: set[str] = set()
    for name, kind in definitions().items():
        base = name.removesuffix("_total") if kind.startswith("Counter") else name
        suffixes = _SAMPLES.get(kind, ("",))
        names |= {base + suffix for suffix in suffixes}
    return frozenset(names)


def metric_names_in(expr: str) -> set[str]:
    """The facegate metric names and scrape series a PromQL expression reads (label
    values are quoted and use hyphens, so they never match)."""
    words = set(re.findall(r"(?<![\w$\"-])(facegate_[a-z0-9_]+|up|scrape_[a-z_]+)\b", expr))
    return {w for w in words if w.startswith("facegate_") or w in SCRAPE_SERIES}
