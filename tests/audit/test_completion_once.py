"""One erasure, one ``erasure_completed`` entry, however often its completion is retried.

A completion retried through an audit-writer outage (its wait timed out, the worker
tried again later, maybe in a restarted process or on another host) used to chain one
entry per attempt, each with its own completion time, and no receipt pointed at the
extra ones. Now the first attempt's claims and salt are pinned in the rights database,
the fact id is derived from the request, the chaining writer skips a repeat and the
appender returns the entry already chained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_processor.audit.entries import EntryType
from stream_processor.audit.errors import ChainUnavailable
from stream_processor.audit.keys import OperatorKey
from stream_processor.audit.log import Appended, FileAuditLog
from stream_processor.audit.openings import OpeningStore
from stream_processor.audit.topic_log import TopicAuditLog
from stream_processor.audit.verify import verify_log
from stream_processor.erasure.audit import ErasureAudit
from stream_processor.rights.db import open_rights_db
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import ErasureReceipt, ReceiptClaims, receipt_anchors
from tests.audit.conftest import Chain, Running
from tests.conftest import wait_for
from tests.support.audit import make_claims, uuid7


def _attempt(claims: ReceiptClaims, n: int) -> ReceiptClaims:
    """Attempt ``n`` of the same completion: a later completion time, as the worker has."""
    return claims.model_copy(update={"completed_at_ms": claims.completed_at_ms + 1000 * n})


def _completions(lines: list[bytes]) -> list[Any]:
    from stream_processor.audit.entries import decode_entry

    return [e for e in map(decode_entry, lines) if e.type is EntryType.ERASURE_COMPLETED]


def _verifies(lines: list[bytes], receipt: ErasureReceipt, key: OperatorKey) -> None:
    report = verify_log(lines, [], key.public, receipt_anchors(receipt))
    assert report.ok, report.findings


@pytest.fixture
def receipts(tmp_path: Path) -> Iterator[ReceiptStore]:
    db = open_rights_db(tmp_path / "rights.sqlite")
    try:
        yield ReceiptStore(db)
    finally:
        db.close()


def test_completion_retried_through_a_writer_outage_chains_one_entry(
    chain: Chain, receipts: ReceiptStore, tmp_path: Path,
) -> None:
    key = OperatorKey.load_or_create(tmp_path / "secrets")
    claims = make_claims(uuid7())
    # Attempts from the worker, from a restarted worker and from another host: each
    # publishes its fact while no writer runs, and times out.
    logs = [chain.host("a", wait_s=1.0), chain.host("a-restarted", wait_s=1.0),
            chain.host("b", wait_s=1.0)]  # fmt: skip
    for n, log in enumerate(logs * 2):
        with pytest.raises(ChainUnavailable):
            ErasureAudit(log, key, "test-log", None, receipts).completed(_attempt(claims, n))
    assert receipts.get(claims.request_id) is None
    running = Running(chain.writer())
    try:
        final = chain.host("b-again", wait_s=30.0)
        receipt = ErasureAudit(final, key, "test-log", None, receipts).completed(
            _attempt(claims, 99)
        )
        # The receipt carries the first attempt's claims: they are what was chained.
        assert receipt.claims == _attempt(claims, 0)
        lines = final.path.read_bytes().splitlines(keepends=True)
        done = _completions(lines)
        assert [e.seq for e in done] == [receipt.audit.seq]
        assert done[0].body["request_id"] == claims.request_id
        _verifies(lines, receipt, key)
        # Every other process's fact reaches the writer too, and is skipped (a process
        # retrying its own timed-out append waits for the fact it already published).
        wait_for(lambda: running.writer.stats.repeated >= len(logs) - 1, 20, "skipped")
        # Once issued, a redelivered completion returns the same receipt, chains nothing.
        again = ErasureAudit(logs[0], key, "test-log", None, receipts).completed(claims)
        assert again == receipt
        final.sync()
        assert len(_completions(final.path.read_bytes().splitlines(keepends=True))) == 1
    finally:
        running.halt()


class _Flaky:
    """A sink whose appends fail as scripted: ``lost`` (nothing logged: the fact never
    got out) or ``late`` (logged, but the caller hears a timeout)."""

    def __init__(self, log: FileAuditLog, outcomes: list[str]) -> None:
        self._log = log
        self._outcomes = outcomes

    def append(self, type: EntryType, **kwargs: Any) -> Appended:
        outcome = self._outcomes.pop(0) if self._outcomes else "ok"
        if outcome == "lost":
            raise ChainUnavailable("no writer")
        appended = self._log.append(type, **kwargs)
        if outcome == "late":
            raise ChainUnavailable("chained after the wait ran out")
        return appended

    def head(self) -> Any:
        return self._log.head()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(outcomes=st.lists(st.sampled_from(["lost", "late"]), max_size=6))
def test_any_interleaving_of_lost_and_late_attempts_logs_one_completion(
    tmp_path_factory: pytest.TempPathFactory, outcomes: list[str]
) -> None:
    root = tmp_path_factory.mktemp("once")
    key = OperatorKey.load_or_create(root / "secrets")
    openings = OpeningStore(root / "private" / "openings.sqlite")
    log = FileAuditLog(root / "log.jsonl", openings=openings, fsync=False)
    db = open_rights_db(root / "rights.sqlite")
    try:
        store = ReceiptStore(db)
        claims = make_claims(uuid7())
        flaky = _Flaky(log, list(outcomes))
        for n in range(len(outcomes)):
            with pytest.raises(ChainUnavailable):
                ErasureAudit(flaky, key, "test-log", openings, store).completed(
                    _attempt(claims, n)
                )
        receipt = ErasureAudit(flaky, key, "test-log", openings, store).completed(
            _attempt(claims, len(outcomes))
        )
        lines = log.path.read_bytes().splitlines(keepends=True)
        assert [e.seq for e in _completions(lines)] == [receipt.audit.seq]
        assert receipt.claims == _attempt(claims, 0)
        _verifies(lines, receipt, key)
    finally:
        db.close()
        openings.close()


def test_a_different_fact_under_a_taken_fact_id_chains_nothing(
    chain: Chain, tmp_path: Path,
) -> None:
    """Claims that differ from the pinned ones (a caller that bypasses the pin) under a
    request already completed are never chained: the append fails, nothing is added."""
    from stream_processor.audit.commitment import new_salt
    from stream_processor.rights.receipts import issue_receipt

    key = OperatorKey.load_or_create(tmp_path / "secrets")
    claims, salt = make_claims(uuid7()), new_salt()
    running = Running(chain.writer())
    try:
        log: TopicAuditLog = chain.host("a", wait_s=30.0)
        first = issue_receipt(claims, sink=log, key=key, log_id="t", salt=salt)
        with pytest.raises(ChainUnavailable):
            issue_receipt(_attempt(claims, 1), sink=chain.host("b", wait_s=3.0), key=key,
                          log_id="t", salt=salt)  # fmt: skip
        log.sync()
        lines = log.path.read_bytes().splitlines(keepends=True)
        assert [e.seq for e in _completions(lines)] == [first.audit.seq]
        wait_for(lambda: running.writer.stats.repeated == 1, 10, "the writer skips it")
    finally:
        running.halt()
