"""The erasure worker's blocking steps at the end of a request: the store's deletion,
the last pass and the receipt, and forgetting the subject afterwards.

Each runs in the worker's one thread (``WorkerThread.run``) with its ``Deps``; each
is idempotent (a crash between two of them is finished by the next round). Logs name
request ids, never a pseudonym.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from stream_processor.erasure import plan
from stream_processor.erasure.deps import Deps
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.progress import ErasureProgress, ErasureRequest
from stream_processor.rights.receipts import Deletion, ErasureReceipt

log = logging.getLogger(__name__)


def delete(d: Deps, r: ErasureRequest) -> int:
    """Delete the subject's stored events in scope and take their counts out of the
    aggregates (one store transaction); the rows this request removed in all."""
    return d.store.erase_subject(r.request_id, r.tenant, r.site, r.subject, r.purposes).total_rows


def erase_store(d: Deps, progress: ErasureProgress) -> tuple[int, int]:
    """The last pass before the receipt: (rows, counts) not yet on the record. From
    the store's tally, so a pass that committed before a crash is still reported."""
    total = delete(d, progress.request)
    recorded = sum(x.count for x in progress.deletions or () if x.where == "event_store")
    late = max(0, total - recorded)
    return late, late


def complete(
    d: Deps, request_id: str, now_ms: Callable[[], int], metrics: ErasureMetrics
) -> ErasureReceipt | None:
    """The last deletion pass, the claims and the receipt, once per request."""
    progress = d.book.get(request_id)
    if progress is None or d.book.completed_at(request_id) is not None:
        return None  # completed by the other path meanwhile
    r = progress.request
    # A worker that had not yet seen the withdrawal may have stored an event since.
    late, counted = erase_store(d, progress)
    # The rows are gone from the tables; this takes them out of the files too.
    d.store.release_deleted()
    if late or counted:
        extra = [Deletion(where="event_store", what="stored events (arrived late)", count=late)]
        if counted:
            extra.append(Deletion(where="aggregates", what="counts of late events",
                                  count=counted))  # fmt: skip
        updated = d.book.update(request_id, lambda p: p.with_deletions(extra), now_ms())
        assert updated is not None
        progress = updated[1]
    completed_at = now_ms()
    copies = plan.kafka_copies(d.retentions(), completed_at)
    remaining = plan.remnants(completed_at, copies, d.store_kind, sorted(progress.waived))
    receipt = d.audit.completed(progress.claims(completed_at, copies, remaining))
    d.book.mark_completed(request_id, receipt.claims.completed_at_ms)
    # The receipt is in the rights DB and the book says so: no retry reads the tally.
    d.store.forget_erasure(request_id)
    metrics.completed.inc()
    metrics.latency.observe(max(0, completed_at - r.requested_at_ms) / 1000)
    log.info("erasure %s complete: receipt at audit entry %d", request_id, receipt.audit.seq)
    return receipt


def forget_late_openings(d: Deps, now_ms: int, window_ms: int) -> None:
    """Audit entries about the subject written after the receipt (the ledger follower
    logs the withdrawal and the tombstones when it gets to them) must not stay
    linkable by the operator either: their openings are forgotten too, for a while
    after each completion."""
    for p in d.book.completed_since(now_ms - window_ms):
        n = d.forget_openings(p.request.subject)
        if n:
            log.info("erasure %s: %d later audit entries made unlinkable",
                     p.request.request_id, n)  # fmt: skip


def forget_subjects(d: Deps, now_ms: int, window_ms: int) -> None:
    """Once the window for late audit entries has passed, the book forgets the
    subject: a last pass over the openings first, so none logged since the previous
    round stays linkable."""
    for p in d.book.to_forget(now_ms, window_ms):
        d.forget_openings(p.request.subject)
        d.store.forget_erasure(p.request.request_id)  # again, if a crash came between
        d.book.forget(p.request.request_id, now_ms)
        log.info("erasure %s: the subject is forgotten", p.request.request_id)


__all__ = ["complete", "delete", "erase_store", "forget_late_openings", "forget_subjects"]
