"""Event storage behind one small interface (SQLite by default, PostgreSQL in production)."""

from stream_processor.store.base import EventStore, StoredEvent
from stream_processor.store.sqlite import SqliteEventStore

__all__ = ["EventStore", "SqliteEventStore", "StoredEvent"]
