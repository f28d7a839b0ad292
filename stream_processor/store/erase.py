"""A subject's erasure or consent withdrawal in the store: the rows and their share of
the aggregates go in one transaction, and the store keeps how many rows each erasure
request removed.

Two transactions (delete, then take the counts back) left a window: a worker killed
between them left the erased person's passages on the dashboards, and its retry found
no rows to take back. The tally per request is written in the same transaction, so a
retry after any crash reports exactly what the first attempt removed: the rights
database (another database, perhaps another host) cannot commit with the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from stream_processor.store.base import STORED_OUTCOME, AggregateKey

#: Rows each erasure request deleted: the request id (a random id, no subject) only,
#: until the request's receipt is issued (``forget_erasure``).
ERASED_TABLE = """
CREATE TABLE IF NOT EXISTS erasure_deletions (
    request_id TEXT PRIMARY KEY,
    rows       BIGINT NOT NULL
)"""

_MINUTE_MS = 60_000


class Erased(NamedTuple):
    """What one ``erase_subject`` call removed, and the request's total so far. Each
    stored row counted once in its per-minute cell, so the counts taken back equal
    the rows."""

    rows: int
    total_rows: int


class _Where:
    """The rows of one subject at one site, narrowed by column values."""

    def __init__(self, tenant: str, site: str, subject: str) -> None:
        self.sql = "subject = ? AND tenant = ? AND site = ?"
        self.params: list[Any] = [subject, tenant, site]
        #: An empty choice (no purpose, no kind) selects nothing.
        self.empty = False

    def among(self, column: str, values: Sequence[str]) -> None:
        chosen = sorted(set(values))
        self.empty = self.empty or not chosen
        self.sql += f" AND {column} IN ({', '.join('?' * len(chosen))})"
        self.params.extend(chosen)


class SubjectErasure:
    """The erasure half of ``SqlStore`` (whose engine hooks it uses)."""

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _add_counts(self, counts: Mapping[AggregateKey, int]) -> None:
        raise NotImplementedError

    def _take_back(self, counts: Mapping[AggregateKey, int]) -> None:
        """Seam between the delete and the take-back (fault-injection tests)."""
        self._add_counts(counts)

    _TALLY = (
        "INSERT INTO erasure_deletions (request_id, rows) VALUES (?, ?) "
        "ON CONFLICT (request_id) DO UPDATE SET rows = erasure_deletions.rows + excluded.rows"
    )

    def erase_subject(
        self,
        request_id: str,
        tenant: str,
        site: str,
        subject: str,
        purposes: Sequence[str] | None = None,
    ) -> Erased:
        """Delete the subject's rows at the site (of ``purposes``; all when None), take
        each one's count out of its aggregate cell, and add them to the request's tally:
        all or nothing."""
        where = _Where(tenant, site, subject)
        if purposes is not None:
            where.among("purpose", purposes)
        with self._transaction():
            gone = self._delete_counted_rows(where)
            self._execute(self._sql(self._TALLY), (request_id, gone))
            total = self._query(
                "SELECT rows FROM erasure_deletions WHERE request_id = ?", (request_id,)
            )
        return Erased(gone, int(total[0][0]))

    def delete_subject(
        self,
        tenant: str,
        site: str,
        subject: str,
        purpose: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> int:
        """A consent withdrawal's deletion: the subject's rows (of ``purpose`` and
        ``kinds``; all when None) and their counts, in one transaction, as an erasure
        takes them (docs/processor.md, "What the counts promise"). No tally: a
        withdrawal has no receipt."""
        where = _Where(tenant, site, subject)
        if purpose is not None:
            where.among("purpose", [purpose])
        if kinds is not None:
            where.among("kind", kinds)
        with self._transaction():
            return self._delete_counted_rows(where)

    def _delete_counted_rows(self, where: _Where) -> int:
        """Inside the caller's transaction: delete the rows ``where`` selects and take
        each one's count out of the cell it was counted in."""
        if where.empty:
            return 0
        gone = self._query(
            f"DELETE FROM events WHERE {where.sql} "  # noqa: S608 - column names are ours
            "RETURNING occurred_at_ms, tenant, site, gate, kind, decision",
            where.params,
        )
        cells: Counter[AggregateKey] = Counter(
            AggregateKey(at - at % _MINUTE_MS, t, s, g, k, d, STORED_OUTCOME)
            for at, t, s, g, k, d in gone
        )
        self._take_back({key: -n for key, n in cells.items()})
        return len(gone)

    def erased_rows(self, request_id: str) -> int:
        """How many rows erasures under ``request_id`` removed (0 before the first)."""
        found = self._query(
            "SELECT rows FROM erasure_deletions WHERE request_id = ?", (request_id,)
        )
        return int(found[0][0]) if found else 0

    def forget_erasure(self, request_id: str) -> None:
        """Drop ``request_id``'s tally. Only once its receipt is durable: the tally is
        where the receipt's count comes from, and a retry before that reads it."""
        with self._transaction():
            self._execute(
                self._sql("DELETE FROM erasure_deletions WHERE request_id = ?"), (request_id,)
            )
