"""The audit log's Merkle tree, stored: one file of 32-byte hashes per level.

Level 0 holds the leaf hashes (``offsets.bin`` where each leaf's line
starts), level ``l`` the hashes of the complete, aligned subtrees of 2^l
leaves: twice the leaf hashes' size in all. Any subtree a proof needs is
then O(log n) reads, so proofs at 10^6 entries take milliseconds. The tree
is derived data: ``sync()`` hashes whatever complete lines the log gained
since the last call (under an ``flock``, so any process may call it), and a
crash between writes is repaired on the next sync by cutting every file
back to what the recorded leaf count implies.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
from pathlib import Path

from stream_processor.audit.errors import AuditError
from stream_processor.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    split_point,
)

_CHUNK = 1 << 20


class StoredTree:
    """The tree of ``log_path`` under ``dir_`` (default ``<state>/audit/tree/``)."""

    def __init__(self, dir_: Path, log_path: Path) -> None:
        self.dir = dir_
        self.log_path = log_path
        dir_.mkdir(parents=True, exist_ok=True)
        self._position = dir_ / "position.json"
        self._lock = dir_ / "lock"
        self._offsets = dir_ / "offsets.bin"
        self._lock.touch(exist_ok=True)

    def _level(self, level: int) -> Path:
        return self.dir / f"level-{level:02d}.bin"

    def _read_position(self) -> tuple[int, int]:
        try:
            doc = json.loads(self._position.read_text())
            return int(doc["leaves"]), int(doc["offset"])
        except FileNotFoundError:
            return 0, 0
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{self._position} is unreadable: {exc}") from exc

    def _write_position(self, leaves: int, offset: int) -> None:
        tmp = self._position.with_suffix(".tmp")
        tmp.write_text(json.dumps({"leaves": leaves, "offset": offset}))
        os.replace(tmp, self._position)

    @property
    def size(self) -> int:
        """Leaves hashed so far (call ``sync()`` first to catch up with the log)."""
        return self._read_position()[0]

    def sync(self) -> int:
        """Hash the log's new complete lines; returns the tree size."""
        with open(self._lock, "r+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._sync_locked()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sync_locked(self) -> int:
        leaves, offset = self._read_position()
        have = self._offsets.stat().st_size if self._offsets.exists() else 0
        if have < leaves * 8:  # offsets lost: hash the whole log again
            leaves, offset = 0, 0
        self._repair(leaves)
        if not self.log_path.exists():
            return leaves
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            pending = b""
            while chunk := log.read(_CHUNK):
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                pending = data[cut:]
                lines = data[:cut].split(b"\n")[:-1]
                if lines:
                    self._append_offsets(offset, lines, leaves)
                    self._append([leaf_hash(line) for line in lines], leaves)
                    leaves += len(lines)
                    offset += cut
                    self._write_position(leaves, offset)
        return leaves

    def _append_offsets(self, offset: int, lines: list[bytes], before: int) -> None:
        starts = []
        for line in lines:
            starts.append(offset)
            offset += len(line) + 1
        with open(self._offsets, "ab") as fh:
            fh.truncate(before * 8)
            fh.write(struct.pack(f">{len(starts)}Q", *starts))

    def line(self, index: int) -> bytes:
        """The log line of leaf ``index`` (without its newline)."""
        self._check(index + 1)
        with open(self._offsets, "rb") as fh:
            raw = os.pread(fh.fileno(), 16, index * 8)
        start = struct.unpack(">Q", raw[:8])[0]
        with open(self.log_path, "rb") as log:
            if len(raw) == 16:
                return os.pread(log.fileno(), struct.unpack(">Q", raw[8:])[0] - start - 1, start)
            log.seek(start)
            return log.readline().rstrip(b"\n")

    def _repair(self, leaves: int) -> None:
        if self._offsets.exists() and self._offsets.stat().st_size != leaves * 8:
            with open(self._offsets, "r+b") as fh:
                fh.truncate(leaves * 8)
        level = 0
        while True:
            path = self._level(level)
            if not path.exists():
                break
            want = (leaves >> level) * HASH_SIZE
            if path.stat().st_size != want:
                with open(path, "r+b") as fh:
                    fh.truncate(want)
            level += 1

    def _append(self, hashes: list[bytes], before: int) -> None:
        """Append leaf hashes at level 0 and every parent they complete above it."""
        level, count = 0, before
        while hashes:
            with open(self._level(level), "ab") as fh:
                fh.write(b"".join(hashes))
            # Parents completed: pair up from an even index of this level.
            first = count if count % 2 == 0 else count - 1
            total = count + len(hashes)
            row = hashes if first == count else [self._read(level, count - 1), *hashes]
            parents = [node_hash(row[i], row[i + 1]) for i in range(0, total - first - 1, 2)]
            level, count, hashes = level + 1, first // 2, parents

    def _read(self, level: int, index: int) -> bytes:
        with open(self._level(level), "rb") as fh:
            data = os.pread(fh.fileno(), HASH_SIZE, index * HASH_SIZE)
        if len(data) != HASH_SIZE:
            raise AuditError(f"the stored tree has no node {index} at level {level}")
        return data

    def subtree(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self._read(n.bit_length() - 1, start // n)
        k = split_point(n)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))

    def leaf(self, index: int) -> bytes:
        return self._read(0, index)

    def root(self, size: int) -> bytes:
        self._check(size)
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        self._check(size)
        return inclusion_proof(self, index, size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        self._check(new)
        return consistency_proof(self, old, new)

    def _check(self, size: int) -> None:
        if size > self.size:
            raise AuditError(f"the tree has {self.size} leaves, not {size}")
