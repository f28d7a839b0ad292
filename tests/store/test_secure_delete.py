"""Deletion really deletes in the SQLite event store: ``secure_delete`` is on, and a
deleted subject's row leaves none of its bytes in the database file or the WAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_processor.runtime.settings import BrokerSettings
from stream_processor.store.factory import store_factory
from stream_processor.store.settings import StoreSettings
from stream_processor.store.sqlite import SqliteEventStore
from tests.support.store import SUBJ, row

pytestmark = pytest.mark.component

#: A value that appears only in the erased row (the pseudonym shape the store holds).
MARKER = "ps1_" + "7e" * 16


def _files(path: Path) -> bytes:
    """Everything SQLite keeps of the store on disk: the file, its WAL and shm."""
    return b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )


def _fill_and_erase(store: SqliteEventStore) -> None:
    # The erased subject's rows share pages with rows that stay: the page survives,
    # only the rows' cells are freed (the case where bytes linger without secure_delete).
    store.put_many([row(i) for i in range(200)] + [row(1000 + i, subject=MARKER) for i in range(3)])
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # rows now in the main file too
    assert MARKER.encode() in _files(store.path)
    assert store.delete_subject("t1", "s1", MARKER) == 3
    store.release_deleted()


def test_secure_delete_is_on_by_default_and_erased_bytes_are_gone(tmp_path: Path) -> None:
    settings = StoreSettings(store="sqlite")
    assert settings.sqlite_secure_delete is True
    factory, where = store_factory(
        BrokerSettings(state_dir=tmp_path), tmp_path / "e.sqlite", settings
    )
    store = factory()
    assert isinstance(store, SqliteEventStore)
    try:
        assert store._db.execute("PRAGMA secure_delete").fetchone()[0] == 1
        _fill_and_erase(store)
        files = _files(Path(where))
        assert MARKER.encode() not in files
        # The rows that stay are intact: only the erased ones were scrubbed.
        assert SUBJ.encode() in files
        assert store.count() == 200
    finally:
        store.close()


def test_without_secure_delete_the_erased_bytes_survive(tmp_path: Path) -> None:
    """The control: the same steps with the pragma off leave the row in a free cell,
    which is what the default prevents (and what the test above would not notice)."""
    store = SqliteEventStore(tmp_path / "events.sqlite", secure_delete=False)
    try:
        assert store._db.execute("PRAGMA secure_delete").fetchone()[0] == 0
        _fill_and_erase(store)
        assert MARKER.encode() in _files(store.path)
    finally:
        store.close()
