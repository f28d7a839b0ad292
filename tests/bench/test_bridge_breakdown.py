"""The bridge benchmark's breakdown: quantiles read from a Prometheus histogram's
cumulative buckets are the bound of the bucket that holds them."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bridge_breakdown import breakdown_line, bucket_quantile  # noqa: E402

BOUNDS = (0.001, 0.01, 0.1, 1.0, math.inf)


def cumulative(counts: list[int]) -> list[tuple[float, float]]:
    out, total = [], 0
    for bound, n in zip(BOUNDS, counts, strict=True):
        total += n
        out.append((bound, float(total)))
    return out


def test_the_quantile_is_the_bound_of_the_bucket_holding_it() -> None:
    buckets = cumulative([90, 0, 9, 1, 0])  # 90 under 1 ms, 9 under 100 ms, 1 under 1 s
    assert bucket_quantile(buckets, 0.5) == 0.001
    assert bucket_quantile(buckets, 0.95) == 0.1
    assert bucket_quantile(buckets, 0.999) == 1.0
    assert math.isnan(bucket_quantile(cumulative([0, 0, 0, 0, 0]), 0.5))
    assert math.isnan(bucket_quantile([], 0.5))


@given(st.lists(st.integers(0, 1000), min_size=5, max_size=5).filter(any),
       st.floats(0.01, 1.0))  # fmt: skip
def test_at_least_the_quantile_share_lies_at_or_under_the_bound(
    counts: list[int], q: float
) -> None:
    buckets = cumulative(counts)
    bound = bucket_quantile(buckets, q)
    under = next(c for b, c in buckets if b == bound)
    assert under >= q * buckets[-1][1]
    # No smaller bound holds that share.
    assert all(c < q * buckets[-1][1] for b, c in buckets if b < bound)


def test_the_line_names_both_waits() -> None:
    line = breakdown_line(cumulative([0, 50, 50, 0, 0]), [5.0] * 99 + [400.0])
    assert "p50 <= 10 ms, p99 <= 100 ms" in line and "100 events)" in line
    assert "p50 5 ms, p99 400 ms (100 records)" in line
