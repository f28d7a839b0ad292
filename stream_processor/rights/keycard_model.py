"""A key-card request as the rights database keeps it, and the checks on its fields."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from edge_agent.wire.commands import CARD_DIGEST_PATTERN
from edge_agent.wire.events import PSEUDONYM_PATTERN
from edge_agent.wire.topics import ID_PATTERN
from stream_processor.errors import FacegateError

ID = re.compile(ID_PATTERN)
PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
CARD_DIGEST = re.compile(CARD_DIGEST_PATTERN)
CHANNELS = frozenset({"cli", "web", "api", "office"})
#: Why a request closes without a card: a closed list, so the public audit log carries
#: no free text (the note stays in the rights DB with the request).
CANCEL_REASONS = ("resident_withdrew", "moved_out", "duplicate", "entered_in_error")


class KeycardError(FacegateError):
    """A key-card request is invalid or in the wrong state."""


class KeycardStatus(enum.StrEnum):
    OPEN = "open"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class KeycardRequest:
    id: str
    tenant: str
    site: str
    status: KeycardStatus
    channel: str
    card_only: bool
    unit: str | None
    contact: str | None
    subject: str | None
    requested_at_ms: int
    closed_at_ms: int | None
    card_ref: str | None
    note: str | None

    def age_s(self, now_ms: int) -> float:
        end = self.closed_at_ms if self.closed_at_ms is not None else now_ms
        return max(0.0, (end - self.requested_at_ms) / 1000)

    def public_doc(self, now_ms: int) -> dict[str, object]:
        """For the operator API: everything but the subject's pseudonym."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "site": self.site,
            "status": self.status.value,
            "channel": self.channel,
            "card_only": self.card_only,
            "unit": self.unit,
            "contact": self.contact,
            "enrolled_subject": self.subject is not None,
            "requested_at_ms": self.requested_at_ms,
            "closed_at_ms": self.closed_at_ms,
            "age_s": round(self.age_s(now_ms), 1),
            "card_ref": self.card_ref,
        }


@dataclass(frozen=True, slots=True)
class OpenSummary:
    tenant: str
    site: str
    open: int
    oldest_age_s: float


COLUMNS = (
    "id, tenant, site, status, channel, card_only, unit, contact, subject, "
    "requested_at_ms, closed_at_ms, card_ref, note"
)


def read_row(r: tuple[object, ...]) -> KeycardRequest:
    return KeycardRequest(
        id=str(r[0]),
        tenant=str(r[1]),
        site=str(r[2]),
        status=KeycardStatus(str(r[3])),
        channel=str(r[4]),
        card_only=bool(r[5]),
        unit=r[6] if isinstance(r[6], str) else None,
        contact=r[7] if isinstance(r[7], str) else None,
        subject=r[8] if isinstance(r[8], str) else None,
        requested_at_ms=int(r[9]),  # type: ignore[call-overload]
        closed_at_ms=int(r[10]) if r[10] is not None else None,  # type: ignore[call-overload]
        card_ref=r[11] if isinstance(r[11], str) else None,
        note=r[12] if isinstance(r[12], str) else None,
    )


def clean_text(value: str | None, field: str, limit: int = 120) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise KeycardError(f"{field}: at most {limit} printable characters")
    return value


__all__ = [
    "CANCEL_REASONS",
    "CARD_DIGEST",
    "CHANNELS",
    "COLUMNS",
    "ID",
    "PSEUDONYM",
    "KeycardError",
    "KeycardRequest",
    "KeycardStatus",
    "OpenSummary",
    "clean_text",
    "read_row",
]
