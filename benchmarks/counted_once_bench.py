"""Store write path: the cost of counting each event once whatever its later outcome.

A stored row whose event an earlier copy counted without storing moves its count to the
stored cell (store/once.py); finding those rows costs every batch one look-up of its new
ids in ``counted_events``. This times ``write_batch`` per row with that look-up and with
it switched off, alternately, on a SQLite store that already remembers ``--counted``
counted-only ids (unknown faces of the last days), under a temporary directory that is
removed afterwards.

    .venv/bin/python benchmarks/counted_once_bench.py
    .venv/bin/python benchmarks/counted_once_bench.py --batches 50 --counted 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream_processor.store.base import CountedEvent, StoredEvent, row_cell  # noqa: E402
from stream_processor.store.sqlite import SqliteEventStore  # noqa: E402

T0 = 1_700_000_040_000


def _row(i: int) -> StoredEvent:
    return StoredEvent(
        event_id=str(uuid.uuid4()), seq=i, tenant="t1", site="s1", gate="g1", device="d1",
        kind="face_match", decision="granted", purpose="access_control",
        occurred_at_ms=T0 + i * 10, subject="ps1_" + "a" * 32, score_band="high", model="m",
        consent_ref=None, reason=None, stored_at_ms=T0, expires_at_ms=None,
    )  # fmt: skip


def one_run(probe: bool, batches: int, size: int, counted: int) -> float:
    """Microseconds per stored row written by ``write_batch``."""
    tmp = Path(tempfile.mkdtemp(prefix="facegate-countbench-"))
    try:
        store = SqliteEventStore(tmp / "events.sqlite")
        if not probe:
            store._first_counted = lambda rows, old_rows: []  # type: ignore[method-assign]
        cell = (T0, "t1", "s1", "g9", "unknown_face", "denied", "unknown_face_counted_only")
        ids: list[CountedEvent] = [(str(uuid.uuid4()), cell) for _ in range(counted)]
        for start in range(0, len(ids), 5000):
            store.write_batch([], {}, ids[start : start + 5000])
        spent, n = 0.0, 0
        for _ in range(batches):
            rows = [_row(n + i) for i in range(size)]
            n += size
            counts = dict(Counter(row_cell(r) for r in rows))
            started = time.perf_counter()
            store.write_batch(rows, counts)
            spent += time.perf_counter() - started
        store.close()
        return spent / n * 1e6
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=400, help="batches written per run")
    ap.add_argument("--size", type=int, default=500, help="stored rows per batch")
    ap.add_argument("--counted", type=int, default=500_000, help="counted-only ids remembered")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each variant, alternated")
    args = ap.parse_args()
    with_probe: list[float] = []
    without: list[float] = []
    for _ in range(args.rounds):
        without.append(one_run(False, args.batches, args.size, args.counted))
        with_probe.append(one_run(True, args.batches, args.size, args.counted))
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(f"without the look-up: {statistics.median(without):.1f} µs/row {without}")
    print(f"with the look-up:    {statistics.median(with_probe):.1f} µs/row {with_probe}")


if __name__ == "__main__":
    main()
