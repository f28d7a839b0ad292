"""The consent and policy ledgers as a worker holds them: tables, look-ups, changes.

    open_views     snapshots of both ledgers for the worker's first events (LedgerView)
    policy_of      the compiled policy in force for a tenant (the batch path's look-up)
    consent_of     effective consent of (tenant, site, subject, purpose)
    apply_consent  one consent-ledger record → the table; a withdrawal waits for the
                   batches decided before it, deletes the subject's stored face events
                   for that purpose and sends the site's devices a command
    apply_policy   one policy-ledger record → the table (invalid ones dead-lettered)
    recheck        deletes recently withdrawn subjects' face events again (from the sweeper)

Nothing here knows Faust: the app passes its tables (mapping-like) and senders.
Logs name tenants, sites and purposes, never a pseudonym.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Protocol

from edge_agent.wire.commands import encode as encode_command
from stream_processor.policy.consent import ALL_PURPOSES, ConsentRecord, ConsentState, ConsentStatus
from stream_processor.policy.decision import CONSENT_KINDS
from stream_processor.policy.keys import INTERNAL_PREFIX, is_history, is_internal, policy_key
from stream_processor.policy.retention import CompiledPolicy, compile_version
from stream_processor.processor.ledger import (
    REFUSED,
    LedgerRefusal,
    LedgerView,
    consent_state,
    read_consent,
    read_policy,
    site_key,
    withdrawal_command,
)
from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.processor.service import DeadLetterSink
from stream_processor.processor.writer import StoreWriter
from stream_processor.quarantine import Coordinates, Quarantine, Refusal
from stream_processor.store.base import EventStore, close_quietly

log = logging.getLogger(__name__)

_CONSENT_KINDS = [k.value for k in CONSENT_KINDS]
#: Table keys holding how far this worker has read each ledger partition.
POSITION_PREFIX = INTERNAL_PREFIX + b"position/"

#: Reads a ledger topic directly: (latest value per key, end offset per partition).
SnapshotReader = Callable[[str], Awaitable[tuple[dict[bytes, bytes], dict[int, int]]]]


#: A ledger table as the worker uses it (a Faust GlobalTable is one; a dict in tests).
Table = MutableMapping[bytes, bytes]


class Sender(Protocol):
    """Writes one record to a topic and returns once the broker has it."""

    async def send(self, key: bytes, value: bytes) -> None: ...


def position_key(partition: int) -> bytes:
    return POSITION_PREFIX + str(partition).encode()


def delete_withdrawn(store: EventStore, record: ConsentRecord) -> int:
    purpose = None if record.purpose == ALL_PURPOSES else record.purpose
    return store.delete_subject(
        record.tenant, record.site, record.subject, purpose, kinds=_CONSENT_KINDS
    )


class Ledgers:
    def __init__(
        self,
        consent_table: Table,
        policy_table: Table,
        dead_letters: DeadLetterSink,
        quarantine: Quarantine,
        commands: Sender,
        metrics: ProcessorMetrics,
        store_factory: Callable[[], EventStore],
        *,
        consent_topic: str,
        policies_topic: str,
        command_key: bytes,
        withdrawal_recheck_s: float = 300.0,
    ) -> None:
        """``command_key``: the deployment's command-id key (``runtime.command_key``),
        which names each withdrawal's edge command as the erasure worker names it."""
        self.consent_table = consent_table
        self.policy_table = policy_table
        self._dlq = dead_letters
        self._quarantine = quarantine
        self._commands = commands
        self._metrics = metrics
        self._store_factory = store_factory
        self._store: EventStore | None = None
        self._topics = {"consent": consent_topic, "policies": policies_topic}
        self._recheck_s = withdrawal_recheck_s
        self._command_key = command_key
        self._views: dict[str, LedgerView] = {}
        #: Read positions of the consent ledger not yet written to the table.
        self._consent_read: dict[bytes, bytes] = {}
        self._withdrawals: deque[tuple[float, ConsentRecord]] = deque()
        #: Batch writers a withdrawal waits for (set while the ingest loop runs).
        self.writers: list[StoreWriter] = []

    # -- look-ups of the batch path ------------------------------------------------
    async def open_views(self, read: SnapshotReader) -> None:
        for name, table in (("consent", self.consent_table), ("policies", self.policy_table)):
            snapshot, ends = await read(self._topics[name])
            self._views[name] = LedgerView(
                table.get, snapshot, ends, POSITION_PREFIX, REFUSED[name]
            )

    def position(self, ledger: str, partition: int) -> int:
        """Offset of the last record of ``ledger``'s ``partition`` that the batch path's
        look-ups reflect (-1: none, or the views are not open yet)."""
        view = self._views.get(ledger)
        if view is None:
            return -1
        ends = view.snapshot_ends()
        if ends is not None:  # look-ups answer from the start-up snapshot
            return ends.get(partition, 0) - 1
        table = self.consent_table if ledger == "consent" else self.policy_table
        key = position_key(partition)
        read = table.get(key)
        pending = self._consent_read.get(key) if ledger == "consent" else None
        return max(int(read or b"-1"), int(pending or b"-1"))

    def policy_of(self, tenant: str) -> CompiledPolicy | None:
        data = self._views["policies"].get(policy_key(tenant))
        return compile_version(data) if data else None

    def consent_of(self, tenant: str, site: str, subject: str, purpose: str) -> ConsentState:
        return consent_state(self._views["consent"].get, tenant, site, subject, purpose)

    def policies_in_force(self) -> dict[str, CompiledPolicy]:
        """The current version per tenant, from the table (the sweeper's snapshot)."""
        out: dict[str, CompiledPolicy] = {}
        for key, data in list(self.policy_table.items()):
            if not is_history(key) and not is_internal(key) and data:
                compiled = compile_version(data)
                out[compiled.tenant] = compiled
        return out

    # -- the consent ledger --------------------------------------------------------
    async def apply_consent(self, key: bytes | None, value: bytes | None, at: Coordinates) -> None:
        """Apply one record; raises (and reconnects next time) if the store fails."""
        outcome = read_consent(key, value)
        if isinstance(outcome, LedgerRefusal):
            # The dead letter keeps no byte of the record: it holds a pseudonym.
            await self._refuse(b"", outcome, at)
        elif outcome is None:
            if key is not None and value is None:
                self.consent_table.pop(key, None)  # the ledger forgot it: so do we
        else:
            assert key is not None and value is not None
            self.consent_table[key] = value
            self._metrics.consent_changes.labels(outcome.status.value).inc()
            if outcome.status is ConsentStatus.WITHDRAWN:
                await self._withdrawn(outcome)
        self._consent_read[position_key(at.partition)] = str(at.offset).encode()

    async def _withdrawn(self, record: ConsentRecord) -> None:
        for writer in self.writers:  # batches decided before the withdrawal are stored first
            await writer.drain()
        if self._store is None:
            self._store = self._store_factory()
        try:
            deleted = delete_withdrawn(self._store, record)
        except Exception:
            self.close()  # a new connection for the retry
            raise
        command = withdrawal_command(record, self._command_key)
        await self._commands.send(site_key(record.tenant, record.site), encode_command(command))
        self._withdrawals.append((time.monotonic(), record))
        self._metrics.withdrawal_deleted.inc(deleted)
        self._metrics.edge_commands.labels(command.type.value).inc()
        log.info(
            "consent withdrawn at %s/%s for %s: %d stored events deleted, "
            "command %s sent to the site's devices",
            record.tenant, record.site, record.purpose, deleted, command.command_id,
        )  # fmt: skip

    def close(self) -> None:
        store, self._store = self._store, None
        close_quietly(store)

    def flush_consent_positions(self) -> None:
        # A position is a table write (a changelog record): written per record it
        # doubled the cost of a worker's first start, which replays the ledger.
        while self._consent_read:
            key, offset = self._consent_read.popitem()
            self.consent_table[key] = offset

    def recheck(self, store: EventStore) -> None:
        """Delete recent withdrawals' face events again: another worker may have stored
        some before it saw the withdrawal. Runs in the sweeper's thread."""
        horizon = time.monotonic() - self._recheck_s
        while self._withdrawals and self._withdrawals[0][0] < horizon:
            self._withdrawals.popleft()
        for _, record in list(self._withdrawals):
            delete_withdrawn(store, record)

    # -- the policy ledger -----------------------------------------------------------
    async def apply_policy(self, key: bytes | None, value: bytes | None, at: Coordinates) -> None:
        outcome = read_policy(key, value)
        if isinstance(outcome, LedgerRefusal):
            await self._refuse(value or b"", outcome, at)
            log.warning("policy record refused: %s %s", outcome.reason, outcome.detail)
        elif outcome is None:
            if key is not None and value is None:
                self.policy_table.pop(key, None)
        else:
            assert key is not None
            self.policy_table[key] = outcome
            if not is_history(key):
                compiled = compile_version(outcome)
                self._metrics.policy_version.labels(compiled.tenant).set(compiled.version)
                log.info("policy v%d of %s in force", compiled.version, compiled.tenant)
        self.policy_table[position_key(at.partition)] = str(at.offset).encode()

    async def _refuse(self, raw: bytes, refusal: LedgerRefusal, at: Coordinates) -> None:
        reason = Refusal(refusal.reason, refusal.detail)
        key, letter = self._quarantine.letter(raw, reason, at)
        await self._dlq.send(key, letter)
        self._quarantine.counted(reason, at)
        self._metrics.dead_letters.labels(refusal.reason).inc()
