"""Doubles and sample records of the erasure unit tests: a subject, a request, stored
rows, and an ``Outbound`` that records what would have gone to Kafka."""

from __future__ import annotations

import time
from collections.abc import Sequence

from edge_agent.pseudonym import SiteSecret, pseudonym
from edge_agent.wire.ids import new_event_id
from stream_processor.erasure.progress import ErasureRequest
from stream_processor.store.base import StoredEvent

SECRET = SiteSecret("acme", "north", b"unit-site-secret-0123456789abcdef")
SUBJECT = pseudonym(SECRET, "resident-1")
OTHER = pseudonym(SECRET, "resident-2")


def request(purposes: list[str] | None = None, site: str = "north") -> ErasureRequest:
    now = int(time.time() * 1000)
    return ErasureRequest(
        request_id=new_event_id(now), tenant="acme", site=site, subject=SUBJECT,
        purposes=purposes, channel="office", requested_at_ms=now,
    )  # fmt: skip


def row(subject: str, at_ms: int, kind: str = "face_match", purpose: str = "access_control",
        gate: str = "g1") -> StoredEvent:  # fmt: skip
    return StoredEvent(
        event_id=new_event_id(at_ms), seq=0, tenant="acme", site="north", gate=gate, device="d1",
        kind=kind, decision="granted", purpose=purpose, occurred_at_ms=at_ms, subject=subject,
        score_band=None, model=None, consent_ref=None, reason=None, stored_at_ms=at_ms,
        expires_at_ms=None,
    )  # fmt: skip


class Recorder:
    """``Outbound`` double: what would have gone to Kafka."""

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self.ledger: list[tuple[bytes, bytes | None]] = []

    async def command(self, key: bytes, value: bytes) -> None:
        self.commands.append(value)

    async def consent(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        self.ledger.extend(records)
