"""The erasure worker's steps, behind small ports; the Faust agents in ``app`` call them.

    on_request   a request from the erasure topic: log it, persist the progress, command
                 every device of the site, withdraw consent, delete the stored events and
                 the subject's share of the aggregates, tombstone the ledger records
    on_ack       a device acknowledgement: advance the progress; complete when it is the last
    tick         periodic: re-send commands to sites with devices still owing an ack, finish
                 steps a crash interrupted, refresh the pending gauges
    complete     a last deletion pass, the claims (with when Kafka's copies expire), the
                 receipt (``ErasureAudit.completed``: audit entry, signature, checkpoint)

Blocking work (stores, SQLite, the audit file, kafka-python) runs in ONE thread of its
own (``worker_thread``); the blocking end-of-request steps are in ``completion``, the
ports in ``deps``. Every step is idempotent (the messages are at-least-once). Logs name
request ids, never a pseudonym.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from edge_agent.wire.commands import CommandAck, CommandType
from edge_agent.wire.commands import encode as encode_command
from stream_processor.erasure import completion, plan, roster
from stream_processor.erasure.deps import Deps, Outbound, read_ack
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.progress import (
    AckOutcome,
    ErasureProgress,
    ErasureRequest,
    ErasureStatus,
)
from stream_processor.erasure.request import read_request
from stream_processor.erasure.withdrawal_tracker import WithdrawalTracker
from stream_processor.erasure.worker_thread import WorkerThread
from stream_processor.processor.ledger import site_key
from stream_processor.quarantine import Refusal
from stream_processor.rights.receipts import Deletion, ErasureReceipt

log = logging.getLogger(__name__)


class ErasureService:
    def __init__(
        self,
        deps_factory: Callable[[], Deps],
        outbound: Outbound,
        metrics: ErasureMetrics,
        *,
        resend_after_s: float = 300.0,
        forget_window_s: float = 900.0,
        withdrawals: WithdrawalTracker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._withdrawals = withdrawals
        self._thread = WorkerThread(deps_factory)
        self._run = self._thread.run
        self._run_ledger = self._thread.run_ledger
        self._out = outbound
        self._metrics = metrics
        self._resend_after_ms = int(resend_after_s * 1000)
        self._forget_window_ms = int(forget_window_s * 1000)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._erasing: set[str] = set()

    # -- plumbing -------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def close(self) -> None:
        await self._thread.close()

    # -- requests --------------------------------------------------------------
    async def on_request(self, raw: bytes | None) -> Refusal | None:
        """Take one request; a refusal is for the caller's quarantine (nothing was done)."""
        request = read_request(raw)
        if isinstance(request, Refusal):
            self._metrics.requests.labels("invalid").inc()
            return request
        await self._take(request)
        return None

    async def _take(self, request: ErasureRequest) -> None:
        async with self._lock:
            existing = await self._run(lambda d: d.book.get(request.request_id))
            if existing is not None:
                self._metrics.requests.labels("repeated").inc()
                if existing.status is ErasureStatus.PENDING:
                    await self._continue(existing)
                return
            with self._metrics.step("accept"):
                progress = await self._run(lambda d: self._accept(d, request))
            self._metrics.requests.labels("accepted").inc()
            log.info(
                "erasure %s accepted at %s/%s: %d devices to acknowledge",
                request.request_id, request.tenant, request.site, len(progress.expected),
            )  # fmt: skip
            await self._continue(progress)

    def _accept(self, d: Deps, request: ErasureRequest) -> ErasureProgress:
        devices = plan.site_devices(d.devices(), request.tenant, request.site)
        progress = ErasureProgress.start(request, plan.command_id_of(request), devices)
        progress = progress.with_retired(d.retired(request.tenant, request.site))
        # The request is on the record before any work starts (a crash here logs it twice
        # on redelivery, never not at all).
        d.audit.requested(
            request_id=request.request_id, tenant=request.tenant, site=request.site,
            subject=request.subject, purposes=request.purposes, channel=request.channel,
        )  # fmt: skip
        d.book.add(progress, self._now_ms())
        return progress

    async def _continue(self, progress: ErasureProgress) -> None:
        """Send the command (again) and do the cloud-side deletions if not yet done."""
        await self._send_command(progress)
        if progress.deletions is None:
            await self._erase_cloud(progress)
        await self._maybe_complete(progress.request.request_id)

    async def _send_command(self, progress: ErasureProgress) -> None:
        r = progress.request
        if progress.expected and not progress.pending_devices:
            return
        if not progress.expected:
            return
        command = plan.erase_command(r, progress.command_id, self._now_ms())
        with self._metrics.step("command"):
            await self._out.command(site_key(r.tenant, r.site), encode_command(command))
        self._metrics.commands_sent.inc()
        now = self._now_ms()
        await self._run(lambda d: d.book.mark_sent(r.request_id, now))

    async def _erase_cloud(self, progress: ErasureProgress) -> None:
        r = progress.request
        self._erasing.add(r.request_id)
        try:
            await self._erase_cloud_steps(r)
        finally:
            self._erasing.discard(r.request_id)

    async def _erase_cloud_steps(self, r: ErasureRequest) -> None:
        # The store deletes the rows and takes their counts back in one transaction and
        # keeps the request's tally with them. The ledger's withdrawal comes after: it
        # makes the processors delete face events too, without taking their counts back
        # or telling the receipt, so they must not get to the subject's rows first.
        async def store() -> int:
            with self._metrics.step("store"):
                erased = await self._run(lambda d: completion.delete(d, r))
                await self._run(lambda d: self._note(d, r, ErasureProgress.with_store_step_done))
                return erased

        async def ledger() -> list[bytes]:
            with self._metrics.step("ledger"):
                withdrawals = plan.withdrawals(r, self._now_ms())
                await self._out.consent([(w.key, w.encode()) for w in withdrawals])
                keys = await self._run_ledger(lambda d: list(d.ledger_keys()))
                forget = plan.consent_keys_to_forget({*keys, *(w.key for w in withdrawals)}, r)
                await self._out.consent([(k, None) for k in forget])
                return forget

        # A retry after a crash: the tally includes what the first attempt removed.
        stored = await store()
        forget = await ledger()
        counted = stored
        cards = 0
        if r.purposes is None:  # a key-card request is not about one purpose
            cards = await self._run(lambda d: d.forget_keycards(r.tenant, r.site, r.subject))
        consent_topic = await self._run(lambda d: d.consent_topic)
        deletions = [
            Deletion(where="event_store", what="stored events", count=stored),
            Deletion(where="aggregates", what="the subject's counts in per-minute aggregates",
                     count=counted),
            Deletion(where=f"kafka:{consent_topic}", what="consent records (tombstoned)",
                     count=len(forget)),
            Deletion(where="rights_db:keycard_requests",
                     what="key-card requests no longer naming the subject", count=cards),
        ]  # fmt: skip
        now = self._now_ms()
        await self._run(
            lambda d: d.book.update(
                r.request_id,
                lambda p: p if p.deletions is not None else p.with_deletions(deletions),
                now,
            )
        )
        self._metrics.deleted_rows.inc(stored)
        log.info(
            "erasure %s: %d stored events deleted, %d aggregate counts taken back, "
            "%d consent records tombstoned", r.request_id, stored, counted, len(forget),
        )  # fmt: skip

    def _note(
        self, d: Deps, r: ErasureRequest, change: Callable[[ErasureProgress], ErasureProgress]
    ) -> ErasureProgress:
        """Apply ``change`` to the request's progress in the book; the state before it."""
        result = d.book.update(r.request_id, change, self._now_ms())
        assert result is not None  # the request was put in the book when it was taken
        return result[0]

    # -- acknowledgements -------------------------------------------------------------
    async def on_ack(self, raw: bytes | None) -> Refusal | None:
        """Take one device acknowledgement; a refusal is for the caller's quarantine."""
        ack = read_ack(raw)
        if isinstance(ack, Refusal):
            self._metrics.acks.labels("invalid").inc()
            return ack
        if ack.type is CommandType.ERASE_SUBJECT:
            await self._take_ack(ack)
        elif ack.type is CommandType.WITHDRAW_CONSENT and self._withdrawals is not None:
            await self._withdrawals.take_ack(ack, self._run, self._now_ms())
        return None

    async def _take_ack(self, ack: CommandAck) -> None:
        # No lock: the book updates atomically, so acks go on while a request's cloud
        # side is being erased (the blocking work is serialised on the one thread).
        now = self._now_ms()

        def apply(d: Deps) -> tuple[AckOutcome, ErasureProgress | None, ErasureProgress | None]:
            request_id = d.book.find(ack.request_id, ack.command_id)
            if request_id is None:
                return AckOutcome.NOT_THIS_REQUEST, None, None
            outcome: list[AckOutcome] = []

            def change(p: ErasureProgress) -> ErasureProgress:
                new, o = p.with_ack(ack)
                outcome.append(o)
                return new

            result = d.book.update(request_id, change, now)
            if result is None:
                return AckOutcome.NOT_THIS_REQUEST, None, None
            return outcome[0], result[0], result[1]

        outcome, before, after = await self._run(apply)
        self._metrics.acks.labels(outcome.value).inc()
        if outcome is AckOutcome.FAILED:
            log.warning(
                "erasure %s: device %s/%s reported a failure (%s); re-sent on the next round",
                ack.request_id, ack.gate, ack.device, ack.detail,
            )  # fmt: skip
        if after is not None and outcome is AckOutcome.ACCEPTED:
            log.info(
                "erasure %s: %s/%s acknowledged (%d templates, %d queued events); %d to go",
                after.request.request_id, ack.gate, ack.device, ack.templates_removed,
                ack.outbox_events_purged, len(after.pending_devices),
            )  # fmt: skip
            await self._maybe_complete(after.request.request_id)

    # -- completion -----------------------------------------------------------------
    async def _maybe_complete(self, request_id: str) -> ErasureReceipt | None:
        progress = await self._run(lambda d: d.book.get(request_id))
        if progress is None or progress.status is not ErasureStatus.COMPLETE:
            return None
        if await self._run(lambda d: d.book.completed_at(request_id)) is not None:
            return None
        with self._metrics.step("complete"):
            return await self._run(
                lambda d: completion.complete(d, request_id, self._now_ms, self._metrics)
            )

    # -- periodic --------------------------------------------------------------------
    async def tick(self) -> None:
        """Re-send commands that wait too long, finish interrupted steps, export gauges."""
        async with self._lock:
            now = self._now_ms()
            due = await self._run(
                lambda d: d.book.pending(sent_before_ms=now - self._resend_after_ms)
            )
            for progress in due:
                await self._continue(progress)
            # A gate registered (or first heard of) since: it gets the command now.
            grown = await self._run(
                lambda d: roster.grow_pending(d.book, d.devices(), now, d.retired)
            )
            for progress in grown:
                await self._send_command(progress)
            pending = await self._run(lambda d: d.book.pending())
            for progress in pending:
                busy = progress.request.request_id in self._erasing
                if progress.deletions is None and progress not in due and not busy:
                    await self._erase_cloud(progress)
                    await self._maybe_complete(progress.request.request_id)
            for progress in await self._run(lambda d: d.book.unfinished()):
                await self._maybe_complete(progress.request.request_id)
            window = self._forget_window_ms
            await self._run(lambda d: completion.forget_late_openings(d, now, window))
            await self._run(lambda d: completion.forget_subjects(d, now, window))
            self._metrics.pending.set(len(pending))
            oldest = min((p.request.requested_at_ms for p in pending), default=now)
            self._metrics.oldest_pending.set(max(0, now - oldest) / 1000)
            if self._withdrawals is not None:
                await self._withdrawals.tick(self._run, self._out, now)


__all__ = ["Deps", "ErasureService", "Outbound", "read_ack"]
