"""Issued receipts, kept so ``facegate erasure receipt ID`` can hand them out again."""

from __future__ import annotations

import sqlite3

from stream_processor.rights.receipts import ErasureReceipt


class ReceiptStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def save(self, receipt: ErasureReceipt) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO erasure_receipts (request_id, subject, issued_at_ms, receipt) "
            "VALUES (?, ?, ?, ?)",
            (
                receipt.claims.request_id,
                receipt.claims.subject,
                receipt.claims.completed_at_ms,
                receipt.to_json(),
            ),
        )

    def get(self, request_id: str) -> ErasureReceipt | None:
        row = self._db.execute(
            "SELECT receipt FROM erasure_receipts WHERE request_id = ?", (request_id,)
        ).fetchone()
        return ErasureReceipt.model_validate_json(row[0]) if row else None

    def unwitnessed(self, limit: int = 1000) -> list[ErasureReceipt]:
        """Receipts that carry no witnessed proof yet, oldest first."""
        rows = self._db.execute(
            "SELECT receipt FROM erasure_receipts "
            "WHERE json_extract(receipt, '$.witnessed') IS NULL "
            "ORDER BY issued_at_ms LIMIT ?",
            (limit,),
        ).fetchall()
        return [ErasureReceipt.model_validate_json(r[0]) for r in rows]

    def for_subject(self, subject: str) -> list[ErasureReceipt]:
        rows = self._db.execute(
            "SELECT receipt FROM erasure_receipts WHERE subject = ? ORDER BY issued_at_ms",
            (subject,),
        ).fetchall()
        return [ErasureReceipt.model_validate_json(r[0]) for r in rows]
