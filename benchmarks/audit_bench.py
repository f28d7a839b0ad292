"""Audit log throughput: append (with and without fsync), full verification, receipt issue.

Appends N consent entries (each with a fresh subject commitment), signs a
checkpoint, then verifies the whole log as an outsider would (files + public
key). Prints entries/s for each phase, the mean line size and the machine.

    .venv/bin/python benchmarks/audit_bench.py --entries 200000 --fsync-entries 2000
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from _machine import machine_line, run

from stream_processor.audit import record
from stream_processor.audit.checkpoint import Checkpointer, CheckpointFile
from stream_processor.audit.keys import OperatorKey
from stream_processor.audit.log import FileAuditLog
from stream_processor.audit.openings import OpeningStore
from stream_processor.audit.verify import read_lines, verify_log


def pseudonym(i: int) -> str:
    return "ps1_" + hashlib.sha256(str(i).encode()).hexdigest()[:32]


def append(log: FileAuditLog, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        record.consent_changed(
            log,
            tenant="acme",
            site=f"site-{i % 100}",
            subject=pseudonym(i),
            purpose="access_control",
            granted=True,
            by_guardian=False,
            evidence_ref=f"form-{i}",
        )
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=200_000, help="entries appended without fsync")
    ap.add_argument("--fsync-entries", type=int, default=2_000, help="entries appended with fsync")
    args = ap.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="fg-audit-bench-") as tmp:
        root = Path(tmp)
        key = OperatorKey.generate()
        openings = OpeningStore(root / "openings.sqlite")

        synced = FileAuditLog(root / "synced.jsonl", openings=openings, fsync=True)
        t = append(synced, args.fsync_entries)
        print(
            f"append, fsync each:   {args.fsync_entries / t:10.0f} entries/s "
            f"({t / args.fsync_entries * 1e3:.2f} ms each, with opening index)"
        )

        log = FileAuditLog(root / "log.jsonl", openings=None, fsync=False)
        t = append(log, args.entries)
        size = log.path.stat().st_size
        print(
            f"append, no fsync:     {args.entries / t:10.0f} entries/s "
            f"({size / args.entries:.0f} bytes/entry, {size / 2**20:.1f} MiB)"
        )

        cps = CheckpointFile(root / "checkpoints.jsonl")
        start = time.perf_counter()
        Checkpointer(log, key, cps, None, "bench").checkpoint()
        print(f"checkpoint:           {(time.perf_counter() - start) * 1e3:10.1f} ms")

        start = time.perf_counter()
        report = verify_log(read_lines(log.path), read_lines(cps.path), key.public)
        t = time.perf_counter() - start
        assert report.ok, report.findings[:3]
        print(f"verify whole log:     {args.entries / t:10.0f} entries/s ({t:.1f} s)")
        openings.close()


if __name__ == "__main__":
    run(main)
