"""Store-and-forward: every event is written here before it is published."""

from edge_agent.outbox.sqlite_outbox import OutboxRow, SqliteOutbox

__all__ = ["OutboxRow", "SqliteOutbox"]
