"""Erasure requests and receipts, and consent withdrawals still owed by gates, of one
tenant, read from the rights database (no pseudonym).

The erasure worker keeps one ``erasure_progress`` row per request, the receipt store
one ``erasure_receipts`` row per issued receipt, and the withdrawal tracker one
``withdrawal_progress`` row per withdrawal command until every gate of the site
acknowledged it; the console only reads them. A withdrawal row names the subject (the
worker must, to re-send): only its counts and device names are read out of it.
"""

from __future__ import annotations

import json

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


class WithdrawalRow(BaseModel):
    command_id: str
    site: str
    purpose: str = Field(description="the purpose withdrawn, or * for all")
    age_s: int = Field(description="time since the withdrawal was made")
    sends: int = Field(description="how often the command was sent so far")
    devices_pending: list[str] = Field(description="gate/device that have not acknowledged")
    devices_acked: int
    overdue: bool = Field(description="still owed by a gate past the alarm bound")


class WithdrawalSummary(BaseModel):
    alarm_after_s: int
    pending: int
    overdue: int
    withdrawals: list[WithdrawalRow]
    next_offset: int | None


_HAS_WITHDRAWALS = {
    "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
    "AND name = 'withdrawal_progress'",
    "postgres": "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'withdrawal_progress' "
    "AND schemaname = current_schema()",
}


def withdrawal_row(progress: str, now_ms: int, alarm_after_s: int) -> WithdrawalRow:
    """The console's row of one pending withdrawal (its subject is left out)."""
    doc = json.loads(progress)
    command = doc["command"]
    acks = doc.get("acks") or {}
    pending = [d for d in doc["expected"] if d not in acks]
    age = max(0, now_ms - int(doc["started_ms"])) // 1000
    return WithdrawalRow(
        command_id=str(command["command_id"]),
        site=str(command["site"]),
        purpose=str(command.get("purpose") or "*"),
        age_s=age,
        sends=int(doc.get("attempts", 0)),
        devices_pending=pending,
        devices_acked=len(acks),
        overdue=bool(pending) and age > alarm_after_s,
    )


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

    def withdrawals_of(
        self, tenant: str, now_ms: int, alarm_after_s: int, offset: int = 0, limit: int = 100
    ) -> WithdrawalSummary:
        """Withdrawals of ``tenant`` some gate has not acknowledged yet, oldest first."""
        out: list[WithdrawalRow] = []
        # The table is the erasure worker's: none yet before it first ran.
        if self._db.execute(_HAS_WITHDRAWALS[self._db.dialect]).fetchone()[0]:
            rows = self._db.execute(
                "SELECT progress FROM withdrawal_progress WHERE done_ms IS NULL "
                "AND progress IS NOT NULL AND tenant = ? ORDER BY started_ms",
                (tenant,),
            ).fetchall()
            out = [withdrawal_row(str(r[0]), now_ms, alarm_after_s) for r in rows]
        return WithdrawalSummary(
            alarm_after_s=alarm_after_s,
            pending=len(out),
            overdue=sum(r.overdue for r in out),
            withdrawals=out[offset : offset + limit],
            next_offset=offset + limit if offset + limit < len(out) else None,
        )
