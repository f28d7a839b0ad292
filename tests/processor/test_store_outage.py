"""A store that goes away while events flow, on the real brokers: PostgreSQL stopped,
SQLite's filesystem full. Nothing is quarantined, nothing is lost, the worker says so
in its metrics and log, and it resumes by itself when the store is back."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_ports, wait_for
from tests.support.processor import BASE_POLICY, Harness, make_event

pytestmark = pytest.mark.component

BEFORE, DURING = 500, 1500


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()  # noqa: S310
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


@contextmanager
def small_filesystem(path: Path, size: str = "64m") -> Iterator[Path]:
    """A tmpfs of its own (the test runs as root, as the stack's set-up does)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Take every free block: big writes first, then 4 KiB ones (nothing left for the WAL)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 4096):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                pass
    return filler


def reset_store(h: Harness) -> None:
    """Drop the test's own store connection (a stopped server leaves it dead)."""
    store, h._store = h._store, None
    if store is not None:
        try:
            store.close()
        except Exception:  # noqa: BLE001, S110 - a dead connection may not close cleanly
            pass


def run_outage(h: Harness, break_store: Callable[[], None], mend_store: Callable[[], None]) -> None:
    (port,) = free_ports(1)
    h.p.extra_env["FACEGATE_PROCESSOR_METRICS_PORT"] = str(port)
    h.p.extra_env["FACEGATE_PROCESSOR_STORE_RETRY_MAX_S"] = "2"  # resume soon after the mend
    h.apply_policy(BASE_POLICY)
    worker = h.p.start("processor", "worker", name="p1")
    before = [make_event("key_card", subject_id=i % 20, seq=i) for i in range(BEFORE)]
    h.send_events(before)
    wait_for(lambda: h.count() >= BEFORE, 120, "the first events stored")
    reset_store(h)
    break_store()
    during = [make_event("pin", subject_id=i % 20, seq=BEFORE + i) for i in range(DURING)]
    h.send_events(during)
    wait_for(lambda: metric(port, "facegate_processor_store_unavailable") == 1, 60, "paused")
    wait_for(lambda: metric(port, "facegate_processor_store_retries_total") >= 3, 60, "retries")
    assert "store unavailable" in h.p.log("p1")
    mend_store()
    wait_for(lambda: h.count() >= BEFORE + DURING, 120, "every event stored after the outage")
    wait_for(lambda: metric(port, "facegate_processor_store_unavailable") == 0, 30, "resumed")
    ids = list(h.store().iter_event_ids())
    assert len(ids) == len(set(ids)) == BEFORE + DURING
    assert set(ids) == {e.event_id for e in before + during}
    assert h.read_topic(h.topics.dlq, timeout_s=3) == []  # nothing quarantined
    assert worker.poll() is None, h.p.log("p1")
    # The worker clears the gauge, then logs the resume: a scrape can fall in between.
    wait_for(lambda: "input resumed" in h.p.log("p1"), 30, "the resume in the worker's log",
             seen=lambda: h.p.log("p1")[-3000:])  # fmt: skip
    log = h.p.log("p1")
    assert "ps1_" not in log  # no pseudonym in the worker's log


@pytest.mark.parametrize("store_kind", ["postgres"], indirect=True)
def test_postgres_stopped_while_events_flow(harness: Harness, pg_cluster: Any) -> None:
    pg = pg_cluster

    def mend() -> None:
        time.sleep(3)
        pg.up()

    try:
        run_outage(harness, pg.down, mend)
    finally:
        pg.up()  # the session's other tests need it


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
def test_sqlite_disk_full_while_events_flow(harness: Harness, tmp_path: Path) -> None:
    h = harness
    with small_filesystem(tmp_path / "small") as folder:
        path = str(folder / "events.sqlite")
        h.target["FACEGATE_PROCESSOR_STORE_PATH"] = path
        h.p.extra_env["FACEGATE_PROCESSOR_STORE_PATH"] = path
        fillers: list[Path] = []

        def mend() -> None:
            time.sleep(3)
            for f in fillers:
                f.unlink()

        run_outage(h, lambda: fillers.append(fill(folder)), mend)
        reset_store(h)
    shutil.rmtree(tmp_path / "small", ignore_errors=True)
