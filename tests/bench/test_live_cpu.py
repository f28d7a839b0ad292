"""The benchmarks' per-process CPU share: a process that burns a core shows near 100%
of one, an idle one near 0, librdkafka's threads are told apart by name, and reaped
children (the publishers) are counted through the counter."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from live_cpu import (  # noqa: E402
    CpuShare,
    pidfile_pids,
    reaped_children_s,
    share_line,
    thread_times,
)

SPIN = "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass\n"


def test_a_spinning_process_and_a_sleeping_one_are_told_apart(tmp_path: Path) -> None:
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    pidfile = tmp_path / "spinner.pid"
    pidfile.write_text(f"{spinner.pid}\n")
    try:
        time.sleep(0.3)  # both interpreters started
        share = CpuShare(
            {"spinner": lambda: pidfile_pids([pidfile]), "sleeper": lambda: [sleeper.pid]}
        ).start()
        time.sleep(0.5)
        shares = share.stop()
    finally:
        spinner.wait(10)
        sleeper.wait(10)
    # A busy loop on a shared machine gets less than a full core, but far more than a sleeper.
    assert shares["spinner"] > 20
    assert shares["sleeper"] < 10
    assert shares["spinner"] > 3 * shares["sleeper"]


def test_librdkafka_threads_are_split_from_the_rest_by_their_name() -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        # Read while the thread lives: an ended thread's time is gone from /proc.
        before = thread_times(os.getpid())
        time.sleep(0.5)
        after = thread_times(os.getpid())
    finally:
        stop.set()
        worker.join()
    # A Python thread keeps the process's name, so it counts as "other", never librdkafka.
    assert after["other"] - before["other"] > 0.05
    assert after["librdkafka"] == before["librdkafka"]


def test_reaped_children_count_once_waited_for() -> None:
    before = reaped_children_s()
    subprocess.run([sys.executable, "-c", SPIN], check=True)
    assert reaped_children_s() - before > 0.2


def test_the_line_lists_groups_largest_first_with_the_total() -> None:
    line = share_line({"bridge (librdkafka)": 150.0, "kafka nodes": 30.0}, cores=2)
    assert line.index("bridge (librdkafka) 150%") < line.index("kafka nodes 30%")
    assert "2 cores = 200%" in line
    assert line.endswith("all of these 180%")


def test_unreadable_pidfiles_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "bad.pid").write_text("not a pid\n")
    assert pidfile_pids([tmp_path / "bad.pid", tmp_path / "missing.pid"]) == []
