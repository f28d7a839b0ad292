"""Withdrawal commands tracked per device until acknowledged, as erase commands are.

The processor sends a withdrawal command once, when it applies the consent-ledger
record. A gate that is offline then, and stays offline past the bridge's replay
window (or whose Mosquitto session is gone), would never get it. So every
withdrawal on the consent ledger is pending for each device of its site until that
device acknowledges ``done``; the erasure worker re-sends the same command (same id:
the gate's handling is idempotent and acks again) with back-off.

    WithdrawalProgress   pure state: expected devices, acks, failures, sends
    resend_delay_ms      pure back-off: first, doubling, capped
    WithdrawalBook       the rows in the rights database (one per command)

A row names the subject (it must, to re-send). It is dropped, subject and all, once
every device acknowledged (a bare row keeps the command id, so a re-read of the
ledger does not start it again), or when the ledger forgets the record (an erasure's
tombstones). The id it keeps is keyed (``withdrawal_ids``): it does not lead back to
the subject.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import msgspec

from edge_agent.wire.commands import AckStatus, CommandAck, CommandType, EdgeCommand
from stream_processor.erasure.progress import AckOutcome
from stream_processor.erasure.withdrawal_ids import finished_id, sealed
from stream_processor.errors import ConfigError


def resend_delay_ms(attempts: int, first_ms: int, max_ms: int) -> int:
    """Wait before the next send after ``attempts`` sends: first, doubling, capped."""
    doublings: int = min(max(attempts - 1, 0), 30)
    return min(max_ms, first_ms << doublings)


class WithdrawalProgress(msgspec.Struct, frozen=True, kw_only=True):
    command: EdgeCommand
    #: The consent-ledger key of the withdrawal (its tombstone drops this row).
    consent_key: str
    #: "gate/device" of every device of the site.
    expected: list[str]
    #: "gate/device" → when it acknowledged done.
    acks: dict[str, int] = msgspec.field(default_factory=dict)
    #: "gate/device" → the detail of its latest failure (cleared by a later done).
    failures: dict[str, str] = msgspec.field(default_factory=dict)
    started_ms: int
    attempts: int = 0

    @classmethod
    def start(
        cls, command: EdgeCommand, consent_key: str, devices: Iterable[tuple[str, str]],
        now_ms: int,
    ) -> WithdrawalProgress:  # fmt: skip
        expected = sorted({f"{gate}/{device}" for gate, device in devices})
        return cls(command=command, consent_key=consent_key, expected=expected, started_ms=now_ms)

    def with_ack(self, ack: CommandAck) -> tuple[WithdrawalProgress, AckOutcome]:
        c = self.command
        if (
            ack.type is not CommandType.WITHDRAW_CONSENT
            or ack.command_id != c.command_id
            or (ack.tenant, ack.site, ack.subject) != (c.tenant, c.site, c.subject)
        ):
            return self, AckOutcome.NOT_THIS_REQUEST
        who = f"{ack.gate}/{ack.device}"
        if ack.status is AckStatus.FAILED:
            failures = {**self.failures, who: ack.detail or "failed"}
            return msgspec.structs.replace(self, failures=failures), AckOutcome.FAILED
        if who in self.acks:
            return self, AckOutcome.DUPLICATE
        failures = {k: v for k, v in self.failures.items() if k != who}
        # A device that acknowledges is owed nothing, listed or not (a gate first heard of
        # after the withdrawal may answer the re-sent command first).
        expected = sorted({*self.expected, who})
        new = msgspec.structs.replace(
            self, acks={**self.acks, who: ack.acked_at_ms}, failures=failures, expected=expected
        )
        return new, AckOutcome.ACCEPTED

    def with_devices(self, devices: Iterable[tuple[str, str]]) -> WithdrawalProgress:
        new = {f"{gate}/{device}" for gate, device in devices} - set(self.expected)
        if not new:
            return self
        return msgspec.structs.replace(self, expected=sorted({*self.expected, *new}))

    def with_send(self) -> WithdrawalProgress:
        return msgspec.structs.replace(self, attempts=self.attempts + 1)

    @property
    def pending_devices(self) -> list[str]:
        return [d for d in self.expected if d not in self.acks]

    @property
    def done(self) -> bool:
        return not self.pending_devices

    def overdue(self, now_ms: int, alarm_after_ms: int) -> bool:
        """Still owed by a device past the bound: the unreachable-gate alarm."""
        return not self.done and now_ms - self.started_ms > alarm_after_ms

    def describe(self, now_ms: int, alarm_after_ms: int) -> dict[str, Any]:
        """For ``facegate erasure withdrawals``: no pseudonym in it."""
        c = self.command
        return {
            "command_id": c.command_id,
            "tenant": c.tenant,
            "site": c.site,
            "purpose": c.purpose or "*",
            "age_s": max(0, now_ms - self.started_ms) // 1000,
            "sends": self.attempts,
            "devices_acked": sorted(self.acks),
            "devices_pending": self.pending_devices,
            "device_failures": dict(sorted(self.failures.items())),
            "overdue": self.overdue(now_ms, alarm_after_ms),
        }

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


def decode_withdrawal(data: bytes | str) -> WithdrawalProgress:
    return msgspec.json.decode(data, type=WithdrawalProgress)


#: Portable DDL (SQLite and PostgreSQL): the progress is JSON text.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS withdrawal_progress (
    command_id TEXT PRIMARY KEY, consent_key TEXT, tenant TEXT NOT NULL, site TEXT NOT NULL,
    started_ms BIGINT NOT NULL, next_send_ms BIGINT NOT NULL, done_ms BIGINT, progress TEXT
)""",
    "CREATE INDEX IF NOT EXISTS withdrawal_progress_due "
    "ON withdrawal_progress (done_ms, next_send_ms)",
    "CREATE INDEX IF NOT EXISTS withdrawal_progress_key ON withdrawal_progress (consent_key)",
    # One row once the finished rows' unkeyed ids (earlier versions') are sealed.
    "CREATE TABLE IF NOT EXISTS withdrawal_ids_keyed (since_ms BIGINT NOT NULL)",
)

_PENDING = "SELECT progress FROM withdrawal_progress WHERE done_ms IS NULL"


class _Db(Protocol):
    """The rights database: a ``sqlite3.Connection`` or the rights DB port (both take
    ``?`` placeholders and ``ON CONFLICT``)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...


@contextmanager
def _exclusive(db: _Db) -> Iterator[None]:
    """The database's exclusive transaction: the port's own where it has one (on
    PostgreSQL it also excludes other hosts), else SQLite's ``BEGIN IMMEDIATE``."""
    transaction = getattr(db, "transaction", None)
    if transaction is not None:
        with transaction():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class WithdrawalBook:
    def __init__(self, db: _Db, command_key: bytes | None = None, now_ms: int = 0) -> None:
        """``command_key``: the deployment's command-id key (``runtime.command_key``),
        needed to add, finish or forget rows; a reader (listings) passes none.
        Opened with it, the book seals the unkeyed ids of rows an earlier version
        finished (once per database)."""
        self._db = db
        self._key = command_key
        for statement in _SCHEMA:
            db.execute(statement)
        if command_key is not None:
            self._seal_finished(command_key, now_ms)

    @property
    def command_key(self) -> bytes:
        if self._key is None:
            raise ConfigError("this withdrawal book was opened without the command-id key")
        return self._key

    def _seal_finished(self, key: bytes, now_ms: int) -> None:
        with _exclusive(self._db):
            if self._db.execute("SELECT 1 FROM withdrawal_ids_keyed").fetchone():
                return
            rows = self._db.execute(
                "SELECT command_id FROM withdrawal_progress WHERE progress IS NULL"
            ).fetchall()
            for (command_id,) in rows:
                self._db.execute(
                    "UPDATE withdrawal_progress SET command_id = ? WHERE command_id = ?",
                    (sealed(command_id, key), command_id),
                )
            self._db.execute("INSERT INTO withdrawal_ids_keyed (since_ms) VALUES (?)", (now_ms,))

    def add(
        self, progress: WithdrawalProgress, next_send_ms: int, aliases: Sequence[str] = ()
    ) -> bool:
        """Start tracking; False if the command is known (pending, done or forgotten),
        under its id or one of ``aliases`` (the ids an earlier version gave it)."""
        c = progress.command
        known = (c.command_id, *aliases)
        with _exclusive(self._db):
            marks = ", ".join("?" * len(known))
            query = f"SELECT 1 FROM withdrawal_progress WHERE command_id IN ({marks})"  # noqa: S608 - placeholders only
            if self._db.execute(query, known).fetchone():
                return False
            cur = self._db.execute(
                "INSERT INTO withdrawal_progress (command_id, consent_key, tenant, site, "
                "started_ms, next_send_ms, progress) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (c.command_id, progress.consent_key, c.tenant, c.site, progress.started_ms,
                 next_send_ms, progress.encode().decode()),
            )  # fmt: skip
        return bool(cur.rowcount == 1)

    def get(self, command_id: str) -> WithdrawalProgress | None:
        row = self._db.execute(
            _PENDING + " AND command_id = ?", (command_id,)
        ).fetchone()  # fmt: skip
        return decode_withdrawal(row[0]) if row else None

    def update(
        self,
        command_id: str,
        change: Callable[[WithdrawalProgress], WithdrawalProgress],
        now_ms: int,
        next_send_ms: int | None = None,
    ) -> WithdrawalProgress | None:
        """Apply ``change`` atomically to a pending row; a row every device acknowledged
        loses its subject (only the command id stays). Returns the new state."""
        with _exclusive(self._db):
            before = self.get(command_id)
            if before is None:
                return None
            after = change(before)
            if after.done:
                kept = finished_id(before.command, before.consent_key, self.command_key)
                self._db.execute(
                    "UPDATE withdrawal_progress SET done_ms = ?, consent_key = NULL, "
                    "progress = NULL, command_id = ? WHERE command_id = ?",
                    (now_ms, kept, command_id),
                )  # fmt: skip
            elif after is not before or next_send_ms is not None:
                self._db.execute(
                    "UPDATE withdrawal_progress SET progress = ?, "
                    "next_send_ms = COALESCE(?, next_send_ms) WHERE command_id = ?",
                    (after.encode().decode(), next_send_ms, command_id),
                )
        return after

    def forget_key(self, consent_key: str, now_ms: int) -> int:
        """The ledger forgot the record (an erasure): the rows naming it lose the subject."""
        key = self.command_key
        with _exclusive(self._db):
            rows = self._db.execute(
                "SELECT command_id, progress FROM withdrawal_progress WHERE consent_key = ?",
                (consent_key,),
            ).fetchall()
            for command_id, progress in rows:
                command = decode_withdrawal(progress).command
                self._db.execute(
                    "UPDATE withdrawal_progress SET done_ms = COALESCE(done_ms, ?), "
                    "consent_key = NULL, progress = NULL, command_id = ? WHERE command_id = ?",
                    (now_ms, finished_id(command, consent_key, key), command_id),
                )
        return len(rows)

    def due(self, now_ms: int) -> list[WithdrawalProgress]:
        rows = self._db.execute(
            _PENDING + " AND next_send_ms <= ? ORDER BY started_ms", (now_ms,)
        ).fetchall()
        return [decode_withdrawal(r[0]) for r in rows]

    def pending(self) -> list[WithdrawalProgress]:
        rows = self._db.execute(_PENDING + " ORDER BY started_ms").fetchall()
        return [decode_withdrawal(r[0]) for r in rows]


__all__ = ["WithdrawalBook", "WithdrawalProgress", "decode_withdrawal", "resend_delay_ms"]
