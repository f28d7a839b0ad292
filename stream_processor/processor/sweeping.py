"""The retention sweeper of a worker: delete what is past its rule, say so in metrics,
logs and the audit log (one ``retention_sweep`` entry per site that lost rows).

Blocking work runs in ONE thread of its own: the sweeper's store connection and the
audit log (SQLite opening index) are made in it and never leave it. A sweep that
fails (the store unavailable, the audit log not writable) is counted and logged;
the next one retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from stream_processor.audit import record
from stream_processor.audit.log import AuditSink
from stream_processor.policy.retention import CompiledPolicy
from stream_processor.processor.ledgers import Ledgers
from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.processor.sweeper import SweepReport, sweep
from stream_processor.store.base import EventStore, close_quietly

log = logging.getLogger(__name__)


class RetentionSweeper:
    def __init__(
        self,
        store_factory: Callable[[], EventStore],
        ledgers: Ledgers,
        metrics: ProcessorMetrics,
        *,
        batch_size: int = 5000,
        audit_factory: Callable[[], AuditSink] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory = store_factory
        self._ledgers = ledgers
        self._metrics = metrics
        self._batch_size = batch_size
        self._audit_factory = audit_factory
        self._audit: AuditSink | None = None
        self._clock = clock
        self._store: EventStore | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweeper")

    async def run(self) -> SweepReport | None:
        """One sweep with the policies in force now; None when the store failed."""
        snapshot = self._ledgers.policies_in_force()
        now_ms = int(self._clock() * 1000)
        loop = asyncio.get_running_loop()
        try:
            report = await loop.run_in_executor(self._thread, self._sweep, snapshot, now_ms)
        except Exception as exc:  # noqa: BLE001 - a timer must not die; the next sweep retries
            self._metrics.sweep_failures.inc()
            log.warning("retention sweep failed (%s); the next one retries", type(exc).__name__)
            await loop.run_in_executor(self._thread, self._drop_store)
            return None
        self.publish(report)
        return report

    def _sweep(self, snapshot: dict[str, CompiledPolicy], now_ms: int) -> SweepReport:
        if self._store is None:
            self._store = self._factory()
        self._ledgers.recheck(self._store)
        report = sweep(self._store, snapshot.get, now_ms, self._batch_size)
        if report.deleted_total and self._audit_factory is not None:
            if self._audit is None:
                self._audit = self._audit_factory()
            versions = {tenant: p.version for tenant, p in snapshot.items()}
            record.retention_sweeps(
                self._audit, deleted=report.deleted, swept_at_ms=now_ms, policy_versions=versions
            )
        return report

    def _drop_store(self) -> None:
        store, self._store = self._store, None
        close_quietly(store)

    def publish(self, report: SweepReport) -> None:
        metrics = self._metrics
        for (tenant, site, kind), n in report.deleted.items():
            metrics.swept.labels(tenant, site, kind).inc(n)
        oldest: dict[tuple[str, str], int] = {}
        for g in report.groups:
            oldest[(g.tenant, g.site)] = max(oldest.get((g.tenant, g.site), 0), g.oldest_age_ms)
            rule = "no policy" if g.rule_ms is None else f"{g.rule_ms / 1000:.0f}s"
            log.info(
                "retention %s/%s %s/%s: oldest %.0fs old, rule %s%s",
                g.tenant, g.site, g.kind, g.purpose, g.oldest_age_ms / 1000, rule,
                "" if g.within_rule else " OVERDUE",
            )  # fmt: skip
        for (tenant, site), age_ms in oldest.items():
            metrics.oldest_age.labels(tenant, site).set(age_ms / 1000)
            metrics.overdue_rows.labels(tenant, site).set(
                sum(n for (t, s, _), n in report.overdue.items() if (t, s) == (tenant, site))
            )
        if report.deleted_total:
            log.info("retention sweep deleted %d rows", report.deleted_total)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._drop_store)
        self._thread.shutdown(wait=True)
