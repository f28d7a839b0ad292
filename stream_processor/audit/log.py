"""The append-only audit log: the ``AuditSink`` port and its JSONL file implementation.

One line per entry, exactly ``canonical(entry)``. Appends take an exclusive
``flock`` on the file, so several processes on one host (Faust workers, the
CLI, the web app) extend one chain. Every append is fsync'ed before it
returns: a receipt never points at an entry that a crash could lose.

Several hosts must not write one file: there, route entries through a
single-partition Kafka topic to one writer (see docs/rights.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from stream_processor.audit.commitment import commit, new_salt
from stream_processor.audit.entries import (
    GENESIS,
    AuditEntry,
    EntryType,
    build_entry,
    decode_entry,
)
from stream_processor.audit.errors import AuditError, IdentifierInAudit
from stream_processor.audit.once_index import ONCE_TYPES, OnceIndex, fact_key
from stream_processor.audit.openings import Openings
from stream_processor.errors import InvalidInput

log = logging.getLogger(__name__)

_PSEUDONYM = re.compile(r"^ps1_[0-9a-f]{32}$")


@dataclass(frozen=True)
class Appended:
    """An entry just written, with the salt that opens its subject commitment (if any)."""

    entry: AuditEntry
    salt: str | None


@dataclass(frozen=True)
class Once:
    """An append that must be logged once however often it is retried (an erasure's
    completion, retried through an outage or a crash): a retry with the same ``key``,
    salt and content returns the entry already logged. ``salt`` is pinned by the caller
    so that every retry commits to the subject identically."""

    key: str
    salt: str | None = None

    @property
    def fact_id(self) -> str:
        """The deterministic id of its fact in the multi-host mode (facts.py)."""
        return hashlib.sha256(b"facegate.audit.once\0" + self.key.encode()).hexdigest()[:32]


def same_fact(entry: AuditEntry, type: EntryType, tenant: str | None, site: str | None,
              subject: str | None, body: dict[str, Any]) -> bool:  # fmt: skip
    """Whether ``entry`` logs this fact (its place and time aside)."""
    return (entry.type, entry.tenant, entry.site, entry.subject, entry.body) == (
        type, tenant, site, subject, body,
    )  # fmt: skip


def committed(subject: str | None, once: Once | None) -> tuple[str | None, str | None]:
    """(salt, commitment) of ``subject``: the pinned salt of ``once`` or a new one."""
    if subject is None:
        return None, None
    if not _PSEUDONYM.fullmatch(subject):
        raise IdentifierInAudit("subject must be a ps1_ pseudonym (it is committed to)")
    salt = once.salt if once is not None and once.salt is not None else new_salt()
    return salt, commit(subject, salt)


@dataclass(frozen=True)
class Head:
    """The last entry of the log: its position and hash (``seq`` -1 for an empty log)."""

    seq: int
    hash: str


class AuditSink(Protocol):
    """Where audit facts go. ``subject`` is a pseudonym: the sink commits to it."""

    def append(
        self,
        type: EntryType,
        *,
        tenant: str | None,
        site: str | None,
        body: dict[str, Any],
        subject: str | None = None,
        once: Once | None = None,
    ) -> Appended:
        """``once``: the append happens at most once per ``once.key`` (see ``Once``)."""
        ...

    def head(self) -> Head: ...


@dataclass(frozen=True)
class SubjectRef:
    """A subject named by its pseudonym (validated), for callers that pass it around."""

    pseudonym: str

    def __post_init__(self) -> None:
        if not _PSEUDONYM.fullmatch(self.pseudonym):
            raise InvalidInput("a subject is named by its ps1_ pseudonym")


class FileAuditLog:
    """The audit log as a JSONL file (default ``<state>/audit/log.jsonl``)."""

    def __init__(
        self,
        path: Path,
        openings: Openings | None = None,
        clock: Callable[[], float] = time.time,
        fsync: bool = True,
    ) -> None:
        self.path = path
        self._openings = openings
        self._clock = clock
        self._fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        # (file size, head) as of our last append: saves re-reading the tail.
        self._cache: tuple[int, Head] | None = None
        #: Once-only entries by what they say: a retried completion costs one lookup.
        self.once_index = OnceIndex()
        self._once_lock = threading.Lock()

    def append(
        self,
        type: EntryType,
        *,
        tenant: str | None,
        site: str | None,
        body: dict[str, Any],
        subject: str | None = None,
        once: Once | None = None,
    ) -> Appended:
        if once is not None and type not in ONCE_TYPES:
            raise AuditError(f"{type} is not a once-only entry type")
        salt, commitment = committed(subject, once)
        with open(self.path, "r+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                head = self._head_locked(fh)
                earlier = (
                    self._logged_locked(fh, type, tenant, site, commitment, body) if once else None
                )
                entry = earlier or self._write_locked(fh, head, type, tenant, site,
                                                      commitment, body)  # fmt: skip
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        if subject is not None and salt is not None and self._openings is not None:
            self._openings.put(entry.seq, subject, salt)
        return Appended(entry, salt)

    def _write_locked(
        self, fh: BinaryIO, head: Head, type: EntryType, tenant: str | None, site: str | None,
        commitment: str | None, body: dict[str, Any],
    ) -> AuditEntry:  # fmt: skip
        entry = build_entry(
            seq=head.seq + 1,
            at_ms=int(self._clock() * 1000),
            type=type,
            tenant=tenant,
            site=site,
            subject=commitment,
            body=body,
            prev=head.hash,
        )
        fh.seek(0, os.SEEK_END)
        fh.write(entry.line() + b"\n")
        fh.flush()
        if self._fsync:
            os.fsync(fh.fileno())
        self._cache = (fh.tell(), Head(entry.seq, entry.hash))
        return entry

    def logged(self, type: EntryType, tenant: str | None, site: str | None,
               subject: str | None, body: dict[str, Any]) -> AuditEntry | None:  # fmt: skip
        """The entry already logging this once-only fact (``subject``: its commitment),
        if any: from the index, not a read of the log (``once_index``)."""
        with open(self.path, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                return self._logged_locked(fh, type, tenant, site, subject, body)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _logged_locked(self, fh: BinaryIO, type: EntryType, tenant: str | None,
                       site: str | None, subject: str | None,
                       body: dict[str, Any]) -> AuditEntry | None:  # fmt: skip
        if type not in ONCE_TYPES:
            raise AuditError(f"{type} is not a once-only entry type: it is not indexed")
        with self._once_lock:
            self.once_index.catch_up(fh)
            return self.once_index.find(fh, fact_key(type, tenant, site, subject, body))

    def extend(self, more: Callable[[Head], Iterable[AuditEntry]]) -> Head:
        """Append the entries ``more(head)`` yields, under the exclusive lock, and return
        the new head: for a copy of a chain kept elsewhere (``more`` judges each entry
        against the head it is given, and may keep its own position under this lock)."""
        with open(self.path, "r+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                head = self._head_locked(fh)
                fh.seek(0, os.SEEK_END)
                for entry in more(head):
                    if entry.seq != head.seq + 1 or entry.prev != head.hash:
                        raise AuditError(f"entry {entry.seq} does not extend {self.path}")
                    fh.write(entry.line() + b"\n")
                    head = Head(entry.seq, entry.hash)
                fh.flush()
                if self._fsync:
                    os.fsync(fh.fileno())
                self._cache = (fh.tell(), head)
                return head
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def head(self) -> Head:
        with open(self.path, "r+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                return self._head_locked(fh, repair=False)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def entries(self) -> Iterator[AuditEntry]:
        with open(self.path, "rb") as fh:
            for raw in fh:
                if raw.endswith(b"\n"):
                    yield decode_entry(raw.rstrip(b"\n"))

    def get(self, seq: int) -> AuditEntry | None:
        for entry in self.entries():
            if entry.seq == seq:
                return entry
        return None

    def _head_locked(self, fh: BinaryIO, repair: bool = True) -> Head:
        size = fh.seek(0, os.SEEK_END)
        if self._cache is not None and self._cache[0] == size:
            return self._cache[1]
        if size == 0:
            return Head(-1, GENESIS)
        last = last_line(fh, size)
        if not last.endswith(b"\n"):
            # A torn write from a crash: it was never fsync'ed and acknowledged.
            if not repair:
                size -= len(last)
                if size == 0:
                    return Head(-1, GENESIS)
                last = last_line(fh, size)
            else:
                log.warning("audit log %s ends in a partial line; dropping it", self.path)
                fh.truncate(size - len(last))
                return self._head_locked(fh)
        try:
            entry = decode_entry(last.rstrip(b"\n"))
        except Exception as exc:
            raise AuditError(f"the last entry of {self.path} is unreadable: {exc}") from exc
        return Head(entry.seq, entry.hash)


def last_line(fh: BinaryIO, size: int) -> bytes:
    """The last line of the first ``size`` bytes (with its newline, if it has one)."""
    block = 4096
    end = size
    # Skip the final newline to find the start of the last line.
    pos = end - 1
    while pos > 0:
        start = max(0, pos - block)
        fh.seek(start)
        chunk = fh.read(pos - start)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            fh.seek(start + idx + 1)
            return fh.read(end - (start + idx + 1))
        pos = start
    fh.seek(0)
    return fh.read(end)
