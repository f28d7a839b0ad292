"""Erasure requests and receipts of one tenant, read from the rights database (no pseudonym).

The erasure worker keeps one ``erasure_progress`` row per request and the
receipt store one ``erasure_receipts`` row per issued receipt; the console only
reads them. Their schema is ``rights/schema.py``, created when the database opens.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from stream_processor.rights.db_port import RightsDb


class ErasureRow(BaseModel):
    request_id: str
    site: str
    status: str = Field(description="pending or complete")
    requested_at_ms: int
    completed_at_ms: int | None
    age_s: int = Field(description="time waited so far, or time it took once complete")
    overdue: bool = Field(description="pending for longer than the SLA")
    receipt_issued: bool


class ErasureSummary(BaseModel):
    sla_s: int
    pending: int
    overdue: int
    completed: int
    median_completion_s: float | None
    requests: list[ErasureRow]
    next_offset: int | None


class ErasureReads:
    def __init__(self, db: RightsDb) -> None:
        self._db = db

    def of_tenant(
        self, tenant: str, now_ms: int, sla_s: int, offset: int = 0, limit: int = 100
    ) -> ErasureSummary:
        rows = self._db.execute(
            "SELECT p.request_id, p.site, p.status, p.requested_at_ms, p.completed_at_ms, "
            "r.request_id IS NOT NULL FROM erasure_progress p LEFT JOIN erasure_receipts r "
            "ON r.request_id = p.request_id WHERE p.tenant = ? ORDER BY p.requested_at_ms DESC",
            (tenant,),
        ).fetchall()
        out = []
        for rid, site, status, requested, completed, receipt in rows:
            pending = status != "complete" or completed is None
            end = now_ms if pending else completed
            age = max(0, (end - requested) // 1000)
            out.append(
                ErasureRow(
                    request_id=rid,
                    site=site,
                    status="pending" if pending else "complete",
                    requested_at_ms=requested,
                    completed_at_ms=completed,
                    age_s=age,
                    overdue=pending and age > sla_s,
                    receipt_issued=bool(receipt),
                )
            )
        done = sorted(r.age_s for r in out if r.status == "complete")
        median = None
        if done:
            mid = len(done) // 2
            median = float(done[mid]) if len(done) % 2 else (done[mid - 1] + done[mid]) / 2
        return ErasureSummary(
            sla_s=sla_s,
            pending=sum(r.status == "pending" for r in out),
            overdue=sum(r.overdue for r in out),
            completed=len(done),
            median_completion_s=median,
            requests=out[offset : offset + limit],
            next_offset=offset + limit if offset + limit < len(out) else None,
        )
