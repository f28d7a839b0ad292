"""The once-only entries of an audit log file, by what they say: the appender's O(1)
answer to "is this fact logged already?" (``log.Once``).

Built from the file the first time it is asked, then kept up to date by reading only
the lines appended since (by this process, another process on the host, or the sync of
a chain copy). Only entries of the once-only types are indexed (an erasure's completion:
one per request), so it holds a few bytes per erasure ever completed.
"""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO

from stream_processor.audit.canonical import canonical
from stream_processor.audit.entries import AuditEntry, EntryType, decode_entry

#: Entry types logged at most once per fact (the chaining writer skips a repeat too).
ONCE_TYPES = frozenset({EntryType.ERASURE_COMPLETED})


def fact_key(
    type: EntryType, tenant: str | None, site: str | None, subject: str | None, body: Any
) -> bytes:
    """What an entry says, its place and time aside (``log.same_fact``), as a digest."""
    return hashlib.sha256(canonical([str(type), tenant, site, subject, body])).digest()


class OnceIndex:
    """Once-only entries of one file by ``fact_key``, and how far the file was read."""

    def __init__(self) -> None:
        self._offset = 0
        #: fact key → the byte offset of its line (an entry would cost ~100 times more).
        self._at: dict[bytes, int] = {}
        #: Lines decoded so far: what a check costs (tests count it, not time).
        self.lines_read = 0

    def catch_up(self, fh: BinaryIO) -> None:
        """Read the complete lines past where the last call stopped. A file shorter than
        that was replaced (a restored copy): it is read again from the start."""
        size = fh.seek(0, 2)
        if size < self._offset:
            self._offset, self._at = 0, {}
        fh.seek(self._offset)
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # a torn last line: the appender repairs it; read it next time
            at, self._offset = self._offset, self._offset + len(raw)
            self.lines_read += 1
            entry = decode_entry(raw.rstrip(b"\n"))
            if entry.type in ONCE_TYPES:
                key = fact_key(entry.type, entry.tenant, entry.site, entry.subject, entry.body)
                self._at.setdefault(key, at)

    def find(self, fh: BinaryIO, key: bytes) -> AuditEntry | None:
        """The entry that logs this fact, if the file had one when last caught up: one
        line read."""
        for _ in range(2):
            at = self._at.get(key)
            if at is None:
                return None
            fh.seek(at)
            self.lines_read += 1
            entry = decode_entry(fh.readline().rstrip(b"\n"))
            if fact_key(entry.type, entry.tenant, entry.site, entry.subject, entry.body) == key:
                return entry
            # The file was replaced by one as long (a restored copy): read it afresh.
            self._offset, self._at = 0, {}
            self.catch_up(fh)
        raise AssertionError("unreachable: a fresh index finds what it indexed")
