"""The once-only check of a completion does not read the chain: the appender keeps an
index of the once-only entries, built from the file once and caught up by reading only
the lines appended since (by itself, another process, or a chain copy's sync). Counted
in lines read, not timed. Behaviour (one entry per completion however often retried)
is ``test_completion_once.py``'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stream_processor.audit.entries import EntryType
from stream_processor.audit.errors import AuditError
from stream_processor.audit.log import FileAuditLog, Once

pytestmark = pytest.mark.unit

SUBJECTS = [f"ps1_{i:032x}" for i in range(1, 400)]


def noise(log: FileAuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.append(EntryType.RETENTION_SWEEP, tenant="acme", site="north", body={"deleted": i})


def complete(log: FileAuditLog, i: int) -> Any:
    """Completion ``i`` (its salt pinned, as the rights DB pins it for every retry)."""
    return log.append(
        EntryType.ERASURE_COMPLETED, tenant="acme", site="north", subject=SUBJECTS[i],
        body={"request_id": f"req-{i}"}, once=Once(f"req-{i}", salt=f"{i:064x}"),
    ).entry  # fmt: skip


def no_full_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: FileAuditLog) -> Any:
        raise AssertionError("the once-only check read the whole log")

    monkeypatch.setattr(FileAuditLog, "entries", refuse)
    monkeypatch.setattr(FileAuditLog, "get", refuse)


def test_a_retried_completion_costs_the_lines_appended_since_not_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = FileAuditLog(tmp_path / "log.jsonl", fsync=False)
    noise(log, 300)
    first = complete(log, 0)  # the index is built: every line read once
    assert log.once_index.lines_read == 300
    no_full_reads(monkeypatch)
    for i in range(1, 40):
        noise(log, 5, 1000 * i)
        before = log.once_index.lines_read
        entry = complete(log, i)
        # The 5 new lines (and, the first time, completion 0 before them); nothing older.
        assert log.once_index.lines_read - before == (6 if i == 1 else 5)
        before = log.once_index.lines_read
        assert complete(log, i) == entry  # a retry: its own new line, then one lookup
        assert complete(log, 0) == first  # one lookup
        assert log.once_index.lines_read - before == 2 + 1
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert sum('"erasure_completed"' in line for line in lines) == 40


def test_a_completion_another_process_logged_is_found_without_reading_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.jsonl"
    worker, cli = FileAuditLog(path, fsync=False), FileAuditLog(path, fsync=False)
    noise(worker, 200)
    complete(worker, 1)
    no_full_reads(monkeypatch)
    noise(cli, 10, 500)
    by_cli = complete(cli, 2)  # the other process builds its own index once
    before = worker.once_index.lines_read
    assert complete(worker, 2) == by_cli
    # Its own completion, the 10 lines and the completion of the other, then the find.
    assert worker.once_index.lines_read - before == 12 + 1
    assert path.read_text().count('"erasure_completed"') == 2


def test_a_replaced_log_is_indexed_afresh(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = FileAuditLog(path, fsync=False)
    noise(log, 3)
    complete(log, 1)
    saved = path.read_bytes()
    noise(log, 20, 100)
    path.write_bytes(saved)  # a restored copy: shorter than what was indexed
    log._cache = None
    again = complete(log, 1)
    assert again.seq == 3 and path.read_bytes() == saved


def test_once_is_refused_for_a_type_the_index_does_not_hold(tmp_path: Path) -> None:
    log = FileAuditLog(tmp_path / "log.jsonl", fsync=False)
    with pytest.raises(AuditError, match="not a once-only"):
        log.append(EntryType.RETENTION_SWEEP, tenant="a", site="b", body={}, once=Once("k"))
