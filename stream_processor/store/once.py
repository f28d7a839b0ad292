"""Each event id adds to the per-minute aggregates once, however often it is written.

A batch is decided again when it is re-delivered (a broker or worker fault, a device
re-sending what it was never told had arrived): its counts would be added again. A
stored event is counted only if its row was new; an event counted but not stored
leaves its id (a random UUIDv7, no subject) in ``counted_events`` for the re-delivery
horizon. Both checks run in the transaction that writes the batch.

A copy decided differently from the first (the consent or the policy changed between
the deliveries) counts once too: a counted-only copy of a stored event is not counted
again, and a stored copy of an event first counted-only moves its count from the first
copy's cell to the stored one. The count must end in the stored cell, where an erasure
of the row takes it back from; ``counted_events`` keeps the first copy's outcome (a
discard reason from a closed set) to find that cell.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from stream_processor.store.base import (
    COUNTED_HORIZON_MS,
    AggregateKey,
    CountedEvent,
    StoredEvent,
    row_cell,
)

_T = TypeVar("_T")

#: Ids of events counted in the aggregates but not stored, kept for the re-delivery
#: horizon. The sweep forgets them through an index on the expiry (retention.py).
COUNTED_TABLE = """
CREATE TABLE IF NOT EXISTS counted_events (
    event_id      TEXT PRIMARY KEY,
    expires_at_ms BIGINT NOT NULL
)"""

#: The outcome a counted-only id was counted under (NULL for ids remembered before it
#: was kept: such an event stays counted where it first was).
COUNTED_OUTCOME_COLUMN = "ALTER TABLE counted_events ADD COLUMN outcome TEXT"


class CountedOnce:
    """The de-duplication half of ``SqlStore`` (whose engine hooks it uses)."""

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _insert_rows(self, rows: Sequence[StoredEvent]) -> int:
        raise NotImplementedError

    def _insert_new(
        self,
        rows: Sequence[StoredEvent],
        counts: Mapping[AggregateKey, int],
        counted: Sequence[CountedEvent],
    ) -> tuple[int, Mapping[AggregateKey, int]]:
        """Insert the batch's rows and counted ids; returns how many rows were new and
        ``counts`` less the events an earlier write counted already."""
        old_rows = self._repeats(rows, self._insert_rows, ("events",))
        moved = self._first_counted(rows, old_rows)
        old_ids = self._repeats(counted, self._insert_counted, ("counted_events", "events"))
        if old_rows or old_ids or moved:
            counts = _without(counts, old_rows, old_ids, moved)
        return len(rows) - len(old_rows), counts

    def _first_counted(
        self, rows: Sequence[StoredEvent], old_rows: Sequence[StoredEvent]
    ) -> list[tuple[StoredEvent, str | None]]:
        """New rows whose event an earlier copy counted without storing it, each with
        that copy's outcome; their ids are forgotten (the row stands for them now).
        A B-tree probe per new row: the price of counting once whatever the outcome."""
        if not rows:
            return []
        old = {r[0] for r in old_rows}
        new = {r[0]: r for r in rows if r[0] not in old}
        ids = list(new)
        found: list[tuple[StoredEvent, str | None]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            hits = self._query(
                f"SELECT event_id, outcome FROM counted_events WHERE event_id IN ({marks})",  # noqa: S608
                chunk,
            )
            if hits:
                gone = [h[0] for h in hits]
                where = f"event_id IN ({', '.join('?' * len(gone))})"
                self._execute(self._sql(f"DELETE FROM counted_events WHERE {where}"), gone)  # noqa: S608
                found.extend((new[event_id], outcome) for event_id, outcome in hits)
        return found

    # A counted-only id whose event is stored already was counted with its row.
    _COUNT = (
        "INSERT INTO counted_events (event_id, expires_at_ms, outcome) SELECT ?, ?, ? "
        "WHERE NOT EXISTS (SELECT 1 FROM events WHERE event_id = ?) "
        "ON CONFLICT (event_id) DO NOTHING"
    )

    def _insert_counted(self, counted: Sequence[CountedEvent]) -> int:
        expires = int(time.time() * 1000) + COUNTED_HORIZON_MS
        return self._executemany(
            self._sql(self._COUNT), [(i, expires, cell[6], i) for i, cell in counted]
        )

    def _present(self, table: str, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = f"SELECT event_id FROM {table} WHERE event_id IN ({', '.join('?' * len(chunk))})"  # noqa: S608
            out.update(r[0] for r in self._query(sql, chunk))
        return out

    def _repeats(
        self, items: Sequence[_T], insert: Callable[[Sequence[_T]], int], tables: Sequence[str]
    ) -> list[_T]:
        """Insert ``items`` (an item is skipped when its id, first in it, is in one of
        ``tables``) and return those that were not new. When every item is new (the
        normal case) that costs the insert alone; otherwise the insert is undone and
        repeated with the new items, once they are known."""
        if not items:
            return []
        self._execute("SAVEPOINT facegate_fresh")
        if insert(items) == len(items):
            self._execute("RELEASE SAVEPOINT facegate_fresh")
            return []
        self._execute("ROLLBACK TO SAVEPOINT facegate_fresh")
        self._execute("RELEASE SAVEPOINT facegate_fresh")
        ids: list[str] = [item[0] for item in items]  # type: ignore[index]
        seen: set[str] = set()
        for table in tables:
            seen |= self._present(table, ids)
        fresh: list[_T] = []
        repeats: list[_T] = []
        for item, event_id in zip(items, ids, strict=True):
            if event_id in seen:
                repeats.append(item)
            else:
                seen.add(event_id)
                fresh.append(item)
        if fresh:
            insert(fresh)
        return repeats


def _without(
    counts: Mapping[AggregateKey, int],
    old_rows: Sequence[StoredEvent],
    old_ids: Sequence[CountedEvent],
    moved: Sequence[tuple[StoredEvent, str | None]] = (),
) -> dict[AggregateKey, int]:
    """``counts`` less one per event already counted by an earlier write (negative
    counts, an erasure's take-back, are kept as given); an event first counted-only
    and stored now leaves its first cell for the stored one."""
    out = dict(counts)
    taken: set[AggregateKey] = set()
    for row, outcome in moved:
        key = row_cell(row)
        if outcome is not None:
            key = key._replace(outcome=outcome)
            taken.add(key)
        out[key] = out.get(key, 0) - 1
    for row in old_rows:
        key = row_cell(row)
        out[key] = out.get(key, 0) - 1
    for _, cell in old_ids:
        key = AggregateKey._make(cell)
        out[key] = out.get(key, 0) - 1
    return {k: n for k, n in out.items() if n > 0 or counts.get(k, 0) < 0 or k in taken}
