"""Withdrawal commands tracked until every device of the site acknowledged: the pure state,
the back-off, the book in a real SQLite rights database, the ledger ingest."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from edge_agent.wire.commands import AckStatus, CommandAck, CommandType, decode_command
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.progress import AckOutcome
from stream_processor.erasure.withdrawal_tracker import (
    Change,
    Timing,
    WithdrawalTracker,
    grow,
    ingest,
)
from stream_processor.erasure.withdrawals import (
    WithdrawalBook,
    WithdrawalProgress,
    resend_delay_ms,
)
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.processor.ledger import withdrawal_command

NOW = 1_800_000_000_000
SUBJECT = "ps1_" + "a" * 32
KEY = b"k" * 32  # the deployment's command-id key
TIMING = Timing(resend_first_ms=60_000, resend_max_ms=1_800_000, alarm_after_ms=600_000,
                track_ms=7 * 86_400_000)  # fmt: skip


def record(at_ms: int = NOW, site: str = "s1", subject: str = SUBJECT) -> ConsentRecord:
    return ConsentRecord(
        tenant="acme", site=site, subject=subject, purpose="*",
        status=ConsentStatus.WITHDRAWN, given_by=GivenBy.SELF, at_ms=at_ms,
    )  # fmt: skip


def roster(*devices: tuple[str, str, str]) -> list[DeviceIdentity]:
    return [DeviceIdentity("acme", site, gate, device) for site, gate, device in devices]


def ack(p: WithdrawalProgress, gate: str, device: str, **changes: object) -> CommandAck:
    c = p.command
    base = CommandAck(
        schema_version=1, command_id=c.command_id, type=CommandType.WITHDRAW_CONSENT,
        tenant=c.tenant, site=c.site, gate=gate, device=device, subject=c.subject,
        status=AckStatus.DONE, templates_removed=1, outbox_events_purged=0, acked_at_ms=NOW,
    )  # fmt: skip
    return msgspec.structs.replace(base, **changes)


def progress(devices: list[tuple[str, str]]) -> WithdrawalProgress:
    return WithdrawalProgress.start(withdrawal_command(record(), KEY), "k", devices, NOW)


@given(st.integers(1, 200), st.integers(1, 10**6), st.integers(1, 10**8))
def test_back_off_starts_at_the_first_wait_doubles_and_is_capped(
    attempts: int, first: int, cap: int
) -> None:
    assert resend_delay_ms(1, first, cap) == min(first, cap)
    assert resend_delay_ms(attempts, first, cap) <= cap
    assert resend_delay_ms(attempts + 1, first, cap) >= resend_delay_ms(attempts, first, cap)
    if first * 2 ** (attempts - 1) <= cap:
        assert resend_delay_ms(attempts, first, cap) == first * 2 ** (attempts - 1)


def test_pending_until_every_device_acknowledged_done() -> None:
    p = progress([("g1", "cam-1"), ("g2", "cam-1")])
    p, outcome = p.with_ack(ack(p, "g1", "cam-1", status=AckStatus.FAILED, detail="gallery_error"))
    assert outcome is AckOutcome.FAILED and p.pending_devices == ["g1/cam-1", "g2/cam-1"]
    p, outcome = p.with_ack(ack(p, "g1", "cam-1"))
    assert outcome is AckOutcome.ACCEPTED and p.failures == {} and not p.done
    assert p.with_ack(ack(p, "g1", "cam-1"))[1] is AckOutcome.DUPLICATE
    p, _ = p.with_ack(ack(p, "g2", "cam-1"))
    assert p.done


def test_an_ack_of_another_command_subject_or_site_moves_nothing() -> None:
    p = progress([("g1", "cam-1")])
    forged = [
        ack(p, "g1", "cam-1", command_id="01890000-0000-7000-8000-000000000000"),
        ack(p, "g1", "cam-1", subject="ps1_" + "b" * 32),
        ack(p, "g1", "cam-1", site="other-site"),
        ack(p, "g1", "cam-1", type=CommandType.ERASE_SUBJECT),
    ]
    for a in forged:
        assert p.with_ack(a) == (p, AckOutcome.NOT_THIS_REQUEST)


def test_overdue_raises_the_alarm_and_the_description_names_no_subject() -> None:
    p = progress([("g1", "cam-1")]).with_send()
    assert not p.overdue(NOW + 600_000, 600_000) and p.overdue(NOW + 600_001, 600_000)
    described = p.describe(NOW + 700_000, 600_000)
    assert described["overdue"] and described["devices_pending"] == ["g1/cam-1"]
    assert SUBJECT not in json.dumps(described)


def book(tmp_path: Path) -> tuple[WithdrawalBook, sqlite3.Connection]:
    db = sqlite3.connect(tmp_path / "rights.sqlite", isolation_level=None)
    return WithdrawalBook(db, KEY), db


def rows_naming(db: sqlite3.Connection, subject: str) -> int:
    rows = db.execute("SELECT * FROM withdrawal_progress").fetchall()
    return sum(subject in repr(r) for r in rows)


def test_the_book_keeps_a_command_once_and_forgets_the_subject_when_done(tmp_path: Path) -> None:
    b, db = book(tmp_path)
    p = progress([("g1", "cam-1")])
    assert b.add(p, NOW + 60_000) and not b.add(p, NOW)
    assert b.due(NOW) == [] and b.due(NOW + 60_000) == [p]
    after = b.update(p.command.command_id, lambda q: q.with_ack(ack(q, "g1", "cam-1"))[0], NOW)
    assert after is not None and after.done
    assert b.pending() == [] and rows_naming(db, SUBJECT) == 0
    # A re-read of the ledger meets the same withdrawal: it is not started again.
    assert not b.add(p, NOW)
    assert b.pending() == []


def test_ingest_tracks_recent_withdrawals_per_device_and_a_tombstone_forgets(
    tmp_path: Path,
) -> None:
    b, db = book(tmp_path)
    devices = roster(("s1", "g1", "cam-1"), ("s1", "g2", "cam-1"), ("s2", "g9", "cam-1"))
    old = record(at_ms=NOW - TIMING.track_ms - 1, subject="ps1_" + "c" * 32)
    empty_site = record(site="s-without-devices", subject="ps1_" + "d" * 32)
    changes: list[Change] = [(b"k1", record()), (b"k-old", old), (b"k-empty", empty_site)]
    assert ingest(b, changes, devices, NOW, TIMING) == 2
    (p,) = b.pending()
    assert p.expected == ["g1/cam-1", "g2/cam-1"] and p.attempts == 1
    assert b.due(NOW + TIMING.resend_first_ms - 1) == []
    # A gate of the site registered later owes it too.
    grow(b, [*devices, *roster(("s1", "g3", "cam-1"))], NOW)
    assert b.pending()[0].expected == ["g1/cam-1", "g2/cam-1", "g3/cam-1"]
    # The ledger forgets the record (an erasure): the subject leaves the book.
    assert ingest(b, [(b"k1", None)], devices, NOW, TIMING) == 0
    assert b.pending() == [] and rows_naming(db, SUBJECT) == 0


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def command(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


def test_the_tracker_re_sends_with_back_off_until_acked_and_raises_the_alarm(
    tmp_path: Path,
) -> None:
    b, _ = book(tmp_path)
    changes: list[list[Change]] = [[(b"k1", record())]]
    parts = SimpleNamespace(
        withdrawals=b, withdrawn=lambda: changes.pop() if changes else [],
        devices=lambda: roster(("s1", "g1", "cam-1")),
    )  # fmt: skip

    async def run(fn: Callable[[Any], Any]) -> Any:
        return fn(parts)

    registry = CollectorRegistry()
    timing = Timing(resend_first_ms=1000, resend_max_ms=4000, alarm_after_ms=10_000,
                    track_ms=86_400_000)  # fmt: skip
    tracker, out = WithdrawalTracker(ErasureMetrics(registry), timing), RecordingSender()

    def sends_at(*offsets: int) -> int:
        for offset in offsets:
            asyncio.run(tracker.tick(run, out, NOW + offset))
        return len(out.sent)

    assert sends_at(0, 999) == 0  # the processor sent it; the first re-send waits
    assert sends_at(1000) == 1 and sends_at(2999) == 1  # then 2 s
    assert sends_at(3000) == 2 and sends_at(6999) == 2  # then 4 s (the cap)
    assert sends_at(7000) == 3 and sends_at(10_999) == 3
    key, value = out.sent[-1]
    assert key == b"acme/s1" and decode_command(value) == withdrawal_command(record(), KEY)
    assert sends_at(10_001 + 1000) == 4
    assert registry.get_sample_value("facegate_withdrawal_devices_overdue") == 1
    (p,) = b.pending()
    asyncio.run(tracker.take_ack(ack(p, "g1", "cam-1"), run, NOW + 12_000))
    assert sends_at(30_000, 60_000) == 4  # acknowledged: no more sends
    assert registry.get_sample_value("facegate_withdrawals_pending") == 0
    assert registry.get_sample_value("facegate_withdrawal_devices_overdue") == 0
    assert registry.get_sample_value(
        "facegate_withdrawal_acks_total", {"outcome": "accepted"}
    ) == 1
