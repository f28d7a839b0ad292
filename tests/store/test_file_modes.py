"""The event store and the rights database are readable by their owner only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_processor.rights.db import open_rights_db
from stream_processor.store.sqlite import SqliteEventStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    # A careless operator's umask must not make the ledgers world-readable.
    old = os.umask(0o000)
    yield
    os.umask(old)


def _files(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


@pytest.mark.usefixtures("loose_umask")
def test_event_store_file_and_its_journal_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "store" / "events.sqlite"
    store = SqliteEventStore(path)
    try:
        files = _files(path)
        assert {p.name for p in files} >= {"events.sqlite", "events.sqlite-wal"}
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert _mode(path.parent) == 0o700
    finally:
        store.close()


@pytest.mark.usefixtures("loose_umask")
def test_rights_db_file_and_its_journal_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "rights" / "rights.sqlite"
    db = open_rights_db(path)
    try:
        db.execute("INSERT INTO erasure_receipts VALUES ('r', 's', 1, '{}')")
        files = _files(path)
        assert {p.name for p in files} >= {"rights.sqlite", "rights.sqlite-wal"}
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        db.close()


def test_an_existing_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "rights.sqlite"
    open_rights_db(path).close()
    for each in _files(path):
        os.chmod(each, 0o644)
    db = open_rights_db(path)
    try:
        assert {_mode(p) for p in _files(path)} == {0o600}
    finally:
        db.close()
