"""The erasure worker's round over withdrawals: follow the ledger, re-send, take acks.

    WithdrawnFollower   the consent ledger followed incrementally: withdrawals and
                        tombstones since the last look (one kept reader)
    WithdrawalTracker   ``take_ack`` (an acknowledgement of a withdrawal command) and
                        ``tick`` (new withdrawals in, rosters grown, due commands re-sent
                        with back-off, gauges and the overdue alarm)

Blocking steps get the worker's ``Deps`` through the service's one thread (``run``).
Logs name command ids, tenants, sites and devices, never a pseudonym.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from edge_agent.errors import WireError
from edge_agent.wire.commands import CommandAck
from edge_agent.wire.commands import encode as encode_command
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure import plan, withdrawal_ids
from stream_processor.erasure.ledger_index import FollowedTopic
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.progress import AckOutcome
from stream_processor.erasure.withdrawals import (
    WithdrawalBook,
    WithdrawalProgress,
    resend_delay_ms,
)
from stream_processor.errors import InvalidInput
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, decode_consent
from stream_processor.processor.ledger import site_key, withdrawal_command
from stream_processor.runtime.ledger_client import Auth

log = logging.getLogger(__name__)

#: A ledger change: a withdrawal record, or None for the key's tombstone.
Change = tuple[bytes, ConsentRecord | None]


class WithdrawnFollower(FollowedTopic):
    """Withdrawals and tombstones on the consent ledger since the last ``changes``.

    After a broker error the reader starts again from the beginning: the changes come
    again, and the book takes each command once."""

    group = "facegate-erasure-withdrawals"

    def __init__(
        self, bootstrap: str, topic: str, timeout_s: float = 30.0, auth: Auth | None = None
    ) -> None:
        super().__init__(bootstrap, topic, timeout_s, auth)
        self._changes: list[Change] = []

    def _apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self._changes.append((key, None))
            return
        try:
            record = decode_consent(value)
        except (WireError, InvalidInput, ValueError):
            return  # the processor dead-letters it; nothing to send for it
        if record.status is ConsentStatus.WITHDRAWN and record.key == key:
            self._changes.append((key, record))

    def _reset(self) -> None:
        self._changes = []

    def changes(self) -> list[Change]:
        self._catch_up()
        out, self._changes = self._changes, []
        return out


class WithdrawalParts(Protocol):
    """What the tracker needs of the worker's blocking parts (``Deps`` has them)."""

    withdrawals: WithdrawalBook | None
    withdrawn: Callable[[], list[Change]]
    devices: Callable[[], list[DeviceIdentity]]


class Sender(Protocol):
    async def command(self, key: bytes, value: bytes) -> None: ...


#: Runs a blocking step on the worker's one thread with its parts (``ErasureService._run``).
Run = Callable[[Callable[[Any], Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Timing:
    resend_first_ms: int
    resend_max_ms: int
    alarm_after_ms: int
    #: A withdrawal older than this when first seen is not tracked (a fresh book meets
    #: the whole ledger).
    track_ms: int


def ingest(
    book: WithdrawalBook, changes: list[Change], roster: list[DeviceIdentity],
    now_ms: int, timing: Timing,
) -> int:  # fmt: skip
    """New withdrawals into the book, tombstoned keys out of it; returns how many new."""
    added = 0
    for key, record in changes:
        if record is None:
            book.forget_key(key.decode(errors="replace"), now_ms)
            continue
        if now_ms - record.at_ms > timing.track_ms:
            continue
        command = withdrawal_command(record, book.command_key)
        devices = plan.site_devices(roster, record.tenant, record.site)
        progress = WithdrawalProgress.start(command, key.decode(), devices, record.at_ms)
        # The processor sent it once already: the first re-send waits a first delay.
        progress = progress.with_send()
        # An earlier version's row for it (unkeyed id) is the same withdrawal.
        earlier = withdrawal_ids.aliases(record, book.command_key)
        if book.add(progress, now_ms + timing.resend_first_ms, earlier):
            added += 1
            if progress.done:
                book.update(command.command_id, lambda p: p, now_ms)
    return added


def grow(book: WithdrawalBook, roster: list[DeviceIdentity], now_ms: int) -> None:
    """Devices of a site the roster shows only now owe the pending withdrawals too."""
    for p in book.pending():
        devices = plan.site_devices(roster, p.command.tenant, p.command.site)
        book.update(p.command.command_id, partial(WithdrawalProgress.with_devices,
                                                  devices=devices), now_ms)  # fmt: skip


def _sent(command_id: str, now_ms: int, next_ms: int, d: WithdrawalParts) -> None:
    if d.withdrawals is not None:
        d.withdrawals.update(command_id, WithdrawalProgress.with_send, now_ms, next_ms)


class WithdrawalTracker:
    def __init__(self, metrics: ErasureMetrics, timing: Timing) -> None:
        self._metrics = metrics
        self._t = timing
        self._alarmed: set[str] = set()

    async def take_ack(self, ack: CommandAck, run: Run, now_ms: int) -> None:
        def apply(d: WithdrawalParts) -> tuple[AckOutcome, WithdrawalProgress | None]:
            outcome = [AckOutcome.NOT_THIS_REQUEST]
            if d.withdrawals is None:
                return outcome[0], None

            def change(p: WithdrawalProgress) -> WithdrawalProgress:
                new, outcome[0] = p.with_ack(ack)
                return new

            after = d.withdrawals.update(ack.command_id, change, now_ms)
            return outcome[0], after

        outcome, after = await run(apply)
        self._metrics.withdrawal_acks.labels(outcome.value).inc()
        if outcome is AckOutcome.ACCEPTED and after is not None:
            log.info("withdrawal %s: %s/%s acknowledged; %d to go", ack.command_id,
                     ack.gate, ack.device, len(after.pending_devices))  # fmt: skip

    async def tick(self, run: Run, out: Sender, now_ms: int) -> None:
        t = self._t

        def step(d: WithdrawalParts) -> list[WithdrawalProgress]:
            if d.withdrawals is None:
                return []
            roster = d.devices()
            ingest(d.withdrawals, d.withdrawn(), roster, now_ms, t)
            grow(d.withdrawals, roster, now_ms)
            return d.withdrawals.due(now_ms)

        due: list[WithdrawalProgress] = await run(step)
        for p in due:
            c = p.command
            await out.command(site_key(c.tenant, c.site), encode_command(c))
            self._metrics.withdrawal_resent.inc()
            wait = resend_delay_ms(p.attempts + 1, t.resend_first_ms, t.resend_max_ms)
            await run(partial(_sent, c.command_id, now_ms, now_ms + wait))
            log.info("withdrawal %s re-sent to %s/%s (%d devices owe it)",
                     c.command_id, c.tenant, c.site, len(p.pending_devices))  # fmt: skip
        pending: list[WithdrawalProgress] = await run(
            lambda d: d.withdrawals.pending() if d.withdrawals else []
        )
        self._export(pending, now_ms)

    def _export(self, pending: list[WithdrawalProgress], now_ms: int) -> None:
        overdue = [p for p in pending if p.overdue(now_ms, self._t.alarm_after_ms)]
        self._metrics.withdrawals_pending.set(len(pending))
        owing = {d for p in overdue for d in p.pending_devices}
        self._metrics.withdrawal_devices_overdue.set(len(owing))
        for p in overdue:
            if p.command.command_id not in self._alarmed:
                log.warning(
                    "withdrawal %s at %s/%s unacknowledged past %d s by %s",
                    p.command.command_id, p.command.tenant, p.command.site,
                    self._t.alarm_after_ms // 1000, ", ".join(p.pending_devices),
                )  # fmt: skip
        self._alarmed = {p.command.command_id for p in overdue}


__all__ = ["Timing", "WithdrawalTracker", "WithdrawnFollower", "grow", "ingest"]
