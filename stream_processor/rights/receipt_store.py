"""Issued receipts, kept so ``facegate erasure receipt ID`` can hand them out again."""

from __future__ import annotations

from stream_processor.audit.commitment import new_salt
from stream_processor.rights.db_port import RightsDb
from stream_processor.rights.receipts import ErasureReceipt, ReceiptClaims

#: No ``witnessed`` member (or a JSON null): ``->>`` gives SQL NULL for both.
_UNWITNESSED = {
    "sqlite": "json_extract(receipt, '$.witnessed') IS NULL",
    "postgres": "(receipt::jsonb ->> 'witnessed') IS NULL",
}


class ReceiptStore:
    def __init__(self, db: RightsDb) -> None:
        self._db = db

    def save(self, receipt: ErasureReceipt) -> None:
        self._db.execute(
            "INSERT INTO erasure_receipts (request_id, subject, issued_at_ms, receipt) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET "
            "subject = excluded.subject, issued_at_ms = excluded.issued_at_ms, "
            "receipt = excluded.receipt",
            (
                receipt.claims.request_id,
                receipt.claims.subject,
                receipt.claims.completed_at_ms,
                receipt.to_json(),
            ),
        )
        # Issued: the pinned attempt (which names the subject) has served its purpose.
        self._db.execute(
            "DELETE FROM erasure_completions WHERE request_id = ?", (receipt.claims.request_id,)
        )

    def pin(self, claims: ReceiptClaims) -> tuple[ReceiptClaims, str]:
        """The claims and salt every attempt to complete this erasure uses: the first
        attempt's (on any host). A retry after an outage then publishes the same
        completion fact, which the audit log chains once (``audit.log.Once``)."""
        self._db.execute(
            "INSERT INTO erasure_completions (request_id, claims, salt) VALUES (?, ?, ?) "
            "ON CONFLICT (request_id) DO NOTHING",
            (claims.request_id, claims.model_dump_json(), new_salt()),
        )
        row = self._db.execute(
            "SELECT claims, salt FROM erasure_completions WHERE request_id = ?",
            (claims.request_id,),
        ).fetchone()
        return ReceiptClaims.model_validate_json(row[0]), str(row[1])

    def get(self, request_id: str) -> ErasureReceipt | None:
        row = self._db.execute(
            "SELECT receipt FROM erasure_receipts WHERE request_id = ?", (request_id,)
        ).fetchone()
        return ErasureReceipt.model_validate_json(row[0]) if row else None

    def unwitnessed(self, limit: int = 1000) -> list[ErasureReceipt]:
        """Receipts that carry no witnessed proof yet, oldest first."""
        rows = self._db.execute(
            "SELECT receipt FROM erasure_receipts "  # noqa: S608 - a constant per dialect
            f"WHERE {_UNWITNESSED[self._db.dialect]} ORDER BY issued_at_ms LIMIT ?",
            (limit,),
        ).fetchall()
        return [ErasureReceipt.model_validate_json(r[0]) for r in rows]

    def for_subject(self, subject: str) -> list[ErasureReceipt]:
        rows = self._db.execute(
            "SELECT receipt FROM erasure_receipts WHERE subject = ? ORDER BY issued_at_ms",
            (subject,),
        ).fetchall()
        return [ErasureReceipt.model_validate_json(r[0]) for r in rows]
