"""Releasing a device that will never acknowledge: a privacy officer's act, on the record.

A gate that is being removed (destroyed, lost, stolen, replaced) while erasures of its
site still wait for it would keep them pending forever. ``waive_device`` releases it
from every pending erasure of its site that it owes: first an ``erasure_waived`` audit
entry (who, the reason from a closed list, the requests), then each erasure records
the waiver, which its receipt names (``waived``, and ``remaining``: the device, with no
bound). Nothing else releases a device: unregistering it does not.

The waiver is also kept (``WaiverBook``, the rights DB) as the device's retirement: a
later erasure of the site still lists the device but starts with it waived, and its
receipt names the waiver, so a gate that is gone for good does not hold every later
erasure pending, and does not vanish from the record either.
"""

from __future__ import annotations

import re

from edge_agent.wire.topics import ID_PATTERN, DeviceIdentity
from stream_processor.audit.entries import EntryType
from stream_processor.audit.log import AuditSink
from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.progress import ErasureProgress, Waived
from stream_processor.errors import InvalidInput
from stream_processor.rights.db_port import RightsDb

#: Why a device may be released; free text could carry a name into the public log.
REASONS = {
    "destroyed": "the device was physically destroyed",
    "wiped": "the device's storage was wiped while it was offline",
    "replaced": "the device was replaced and its storage wiped",
    "lost": "the device is lost: its templates were NOT confirmed erased",
    "stolen": "the device was stolen: its templates were NOT confirmed erased",
}
_BY = re.compile(ID_PATTERN)


class WaiverBook:
    """Devices a privacy officer released for good (the latest waiver per device)."""

    def __init__(self, db: RightsDb) -> None:
        self._db = db

    def record(self, identity: DeviceIdentity, waiver: Waived) -> None:
        self._db.execute(
            "INSERT INTO device_waivers VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, site, gate, device) DO UPDATE SET reason = excluded.reason, "
            "by_officer = excluded.by_officer, at_ms = excluded.at_ms, "
            "audit_seq = excluded.audit_seq",
            (identity.tenant, identity.site, identity.gate, identity.device, waiver.reason,
             waiver.by, waiver.at_ms, waiver.audit_seq),
        )  # fmt: skip

    def retired(self, tenant: str, site: str) -> dict[str, Waived]:
        """ "gate/device" → its waiver, for the devices of one site."""
        rows = self._db.execute(
            "SELECT gate, device, reason, by_officer, at_ms, audit_seq FROM device_waivers "
            "WHERE tenant = ? AND site = ?",
            (tenant, site),
        ).fetchall()
        return {
            f"{g}/{d}": Waived(reason=r, by=b, at_ms=int(at), audit_seq=int(seq))
            for g, d, r, b, at, seq in rows
        }


def owing(book: ErasureBook, identity: DeviceIdentity) -> list[ErasureProgress]:
    """Pending erasures of the device's site that still wait for its acknowledgement."""
    who = f"{identity.gate}/{identity.device}"
    return [
        p
        for p in book.pending()
        if (p.request.tenant, p.request.site) == (identity.tenant, identity.site)
        and who in p.pending_devices
    ]


def waive_device(
    book: ErasureBook,
    sink: AuditSink,
    identity: DeviceIdentity,
    *,
    reason: str,
    by: str,
    now_ms: int,
    retire: WaiverBook | None = None,
) -> list[str]:
    """Release ``identity`` from every pending erasure it owes; returns their request ids.
    With ``retire`` the waiver is kept for later erasures too (then owing nothing now is
    not a mistake: the device is being retired)."""
    if reason not in REASONS:
        raise InvalidInput(f"--reason must be one of: {', '.join(REASONS)}")
    if not _BY.fullmatch(by):
        raise InvalidInput(f"--by must be the officer's account id ({ID_PATTERN})")
    due = owing(book, identity)
    if not due and retire is None:
        raise InvalidInput(f"{identity.username} owes no pending erasure an acknowledgement")
    who = f"{identity.gate}/{identity.device}"
    ids = sorted(p.request.request_id for p in due)
    appended = sink.append(
        EntryType.ERASURE_WAIVED,
        tenant=identity.tenant,
        site=identity.site,
        body={"device": who, "reason": reason, "by": by, "requests": ids},
    )
    waiver = Waived(reason=reason, by=by, at_ms=now_ms, audit_seq=appended.entry.seq)
    if retire is not None:
        retire.record(identity, waiver)
    for request_id in ids:
        book.update(request_id, lambda p: p.with_waiver(who, waiver), now_ms)
    return ids


__all__ = ["REASONS", "WaiverBook", "owing", "waive_device"]
