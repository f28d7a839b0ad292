"""Erasure progress as a pure state machine: what is done, what is still pending, the claims.

An erasure completes when (1) the stores have deleted the subject's rows and
the compacted topics have their tombstones (``with_deletions``, counts per
place), and (2) every gate device of the site expected at the start has
acknowledged the erase command with ``done`` (``with_ack``). A device that is
offline keeps the request pending, visibly (``describe``), until it reconnects
and acknowledges. Then ``claims`` gives the receipt's content for
``ErasureAudit.completed``.

No broker, store or clock here: a Faust agent feeds requests, acks and
deletion counts in, and persists ``ErasureProgress`` (``encode``/``decode``)
in a table keyed by request id.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from edge_agent.wire.commands import AckStatus, CommandAck, CommandType, Uuid7
from edge_agent.wire.whole import check_whole
from stream_processor.erasure.request import ErasureRequest
from stream_processor.errors import InvalidInput
from stream_processor.rights.receipts import (
    FORMAT,
    Deletion,
    DeviceAck,
    DeviceWaiver,
    ErasureScope,
    KafkaCopy,
    ReceiptClaims,
    Remnant,
)

#: Stands for the subject in a completed erasure's record once its late audit entries
#: are unlinked: the record still decodes (status, counts, devices) and names no one. A
#: pseudonym is an HMAC output, so no resident's is all zeros.
FORGOTTEN = "ps1_" + "0" * 32


class ErasureStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"


class AckOutcome(enum.StrEnum):
    """What ``with_ack`` did with an acknowledgement (a bounded set: a metrics label)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    FAILED = "failed"  # the device reported a failure: still pending, re-send the command
    NOT_THIS_REQUEST = "not_this_request"


class Removed(msgspec.Struct, frozen=True):
    """What one store or topic removed (msgspec twin of the receipt's ``Deletion``)."""

    where: str
    what: str
    count: int


class Waived(msgspec.Struct, frozen=True, kw_only=True):
    """A privacy officer released a device from owing its acknowledgement."""

    reason: str
    by: str
    at_ms: int
    audit_seq: int


class ErasureProgress(msgspec.Struct, frozen=True, kw_only=True):
    request: ErasureRequest
    command_id: Uuid7
    #: "gate/device" of every device of the site when the erasure started.
    expected: list[str]
    #: "gate/device" → its done acknowledgement.
    acks: dict[str, CommandAck] = msgspec.field(default_factory=dict)
    #: "gate/device" → the detail of its latest failure (cleared by a later done).
    failures: dict[str, str] = msgspec.field(default_factory=dict)
    #: What the stores and compacted topics removed; null until they report.
    deletions: list[Removed] | None = None
    #: "gate/device" → the waiver that released it (it never acknowledged).
    waived: dict[str, Waived] = msgspec.field(default_factory=dict)
    #: What the store held of the subject before the cloud-side steps deleted anything
    #: (rows, aggregate counts), and whether the store step finished: a step interrupted
    #: after its DELETE committed finds nothing left to count when it is resumed.
    planned: tuple[int, int] | None = None
    store_step_done: bool = False

    def __post_init__(self) -> None:
        check_whole(self)  # msgspec's pattern check takes a trailing newline (wire/whole.py)

    @classmethod
    def start(
        cls, request: ErasureRequest, command_id: str, devices: Iterable[tuple[str, str]]
    ) -> ErasureProgress:
        """``devices``: (gate, device) of every device registered at the site now."""
        expected = sorted({f"{gate}/{device}" for gate, device in devices})
        return cls(request=request, command_id=command_id, expected=expected)

    def with_ack(self, ack: CommandAck) -> tuple[ErasureProgress, AckOutcome]:
        r = self.request
        if (
            ack.type is not CommandType.ERASE_SUBJECT
            or ack.command_id != self.command_id
            or (ack.request_id is not None and ack.request_id != r.request_id)
            or (ack.tenant, ack.site, ack.subject) != (r.tenant, r.site, r.subject)
        ):
            return self, AckOutcome.NOT_THIS_REQUEST
        if self.status is ErasureStatus.COMPLETE:
            # Its receipt is issued; and its record must stay as completed (``to_forget``).
            return self, AckOutcome.DUPLICATE
        who = f"{ack.gate}/{ack.device}"
        if ack.status is AckStatus.FAILED:
            failures = {**self.failures, who: ack.detail or "failed"}
            return msgspec.structs.replace(self, failures=failures), AckOutcome.FAILED
        if who in self.acks:
            return self, AckOutcome.DUPLICATE
        failures = {k: v for k, v in self.failures.items() if k != who}
        new = msgspec.structs.replace(self, acks={**self.acks, who: ack}, failures=failures)
        return new, AckOutcome.ACCEPTED

    def with_devices(self, devices: Iterable[tuple[str, str]]) -> ErasureProgress:
        """Add devices of the site that the roster shows only now (a gate registered or
        first heard of after the request): a pending erasure waits for them too."""
        if self.status is ErasureStatus.COMPLETE:
            return self
        new = {f"{gate}/{device}" for gate, device in devices} - set(self.expected)
        if not new:
            return self
        return msgspec.structs.replace(self, expected=sorted({*self.expected, *new}))

    def with_waiver(self, who: str, waiver: Waived) -> ErasureProgress:
        """Release ``who`` ("gate/device"), which owes its acknowledgement, on the record."""
        if who not in self.pending_devices:
            return self
        return msgspec.structs.replace(self, waived={**self.waived, who: waiver})

    def with_retired(self, retired: dict[str, Waived]) -> ErasureProgress:
        """Apply the standing waivers of retired devices this erasure expects."""
        new = self
        for who, waiver in sorted(retired.items()):
            new = new.with_waiver(who, waiver)
        return new

    def with_planned(self, rows: int, counts: int) -> ErasureProgress:
        """Record the first snapshot's counts; a resumed erasure keeps the first ones."""
        if self.planned is not None:
            return self
        return msgspec.structs.replace(self, planned=(rows, counts))

    def with_store_step_done(self) -> ErasureProgress:
        return self if self.store_step_done else msgspec.structs.replace(self, store_step_done=True)

    def forgotten(self) -> ErasureProgress:
        """This erasure with ``FORGOTTEN`` where the subject was (the request and every
        acknowledgement): what the book keeps once nothing needs the subject."""
        acks = {who: msgspec.structs.replace(a, subject=FORGOTTEN) for who, a in self.acks.items()}
        request = msgspec.structs.replace(self.request, subject=FORGOTTEN)
        return msgspec.structs.replace(self, request=request, acks=acks)

    def with_deletions(self, deletions: Sequence[Deletion]) -> ErasureProgress:
        """Add what a store or topic removed (several reports add up)."""
        merged = [*(self.deletions or []), *(Removed(d.where, d.what, d.count) for d in deletions)]
        return msgspec.structs.replace(self, deletions=merged)

    @property
    def pending_devices(self) -> list[str]:
        return [d for d in self.expected if d not in self.acks and d not in self.waived]

    @property
    def status(self) -> ErasureStatus:
        if self.deletions is None or self.pending_devices:
            return ErasureStatus.PENDING
        return ErasureStatus.COMPLETE

    def describe(self, now_ms: int) -> dict[str, Any]:
        """For ``facegate erasure status`` and the dashboard: no pseudonym in it."""
        r = self.request
        return {
            "request_id": r.request_id,
            "tenant": r.tenant,
            "site": r.site,
            "status": self.status.value,
            "age_s": max(0, now_ms - r.requested_at_ms) // 1000,
            "stores_done": self.deletions is not None,
            "devices_acked": sorted(self.acks),
            "devices_pending": self.pending_devices,
            "devices_waived": sorted(self.waived),
            "device_failures": dict(sorted(self.failures.items())),
        }

    def claims(
        self,
        completed_at_ms: int,
        kafka: Sequence[KafkaCopy] = (),
        remaining: Sequence[Remnant] = (),
    ) -> ReceiptClaims:
        """The receipt's claims; only for a complete erasure."""
        if self.status is not ErasureStatus.COMPLETE:
            raise InvalidInput(
                f"erasure {self.request.request_id} is pending: "
                f"stores_done={self.deletions is not None}, devices={self.pending_devices}"
            )
        r = self.request
        devices = [
            DeviceAck(
                gate=a.gate,
                device=a.device,
                command_id=a.command_id,
                status="done",
                templates_removed=a.templates_removed,
                outbox_events_purged=a.outbox_events_purged,
                acked_at_ms=a.acked_at_ms,
            )
            for _, a in sorted(self.acks.items())
        ]
        edge = [
            Deletion(where=f"edge:{d.gate}/{d.device}", what=what, count=n)
            for d in devices
            for what, n in (
                ("face templates", d.templates_removed),
                ("queued events", d.outbox_events_purged),
            )
        ]
        return ReceiptClaims(
            format=FORMAT,
            request_id=r.request_id,
            tenant=r.tenant,
            site=r.site,
            subject=r.subject,
            scope=ErasureScope(purposes=sorted(r.purposes) if r.purposes is not None else None),
            deletions=[
                *(
                    Deletion(where=d.where, what=d.what, count=d.count)
                    for d in self.deletions or []
                ),
                *edge,
            ],
            devices=devices,
            kafka=list(kafka),
            waived=[
                DeviceWaiver(
                    gate=who.split("/")[0],
                    device=who.split("/")[1],
                    reason=w.reason,
                    by=w.by,
                    waived_at_ms=w.at_ms,
                    audit_seq=w.audit_seq,
                )  # fmt: skip
                for who, w in sorted(self.waived.items())
            ],
            remaining=list(remaining),
            requested_at_ms=r.requested_at_ms,
            completed_at_ms=completed_at_ms,
        )

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


def decode_progress(data: bytes) -> ErasureProgress:
    return msgspec.json.decode(data, type=ErasureProgress)


# ErasureRequest: re-exported, the progress' users (CLI, rights, benchmarks) import it here.
__all__ = [
    "FORGOTTEN",
    "AckOutcome",
    "ErasureProgress",
    "ErasureRequest",
    "ErasureStatus",
    "Removed",
    "Waived",
    "decode_progress",
]
