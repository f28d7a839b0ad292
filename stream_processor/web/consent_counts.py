"""Consent coverage for the console, as counts only: the consent ledger folded per site.

The follower tails the compacted consent topic (latest record per tenant/site/
subject/purpose). It keeps no pseudonym: each ledger key and subject is kept
as a keyed digest with a secret made at start-up (never written anywhere), so
counts stay right as records replace each other, and nothing in the web
process's memory links back to a resident.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from pydantic import BaseModel, Field

from edge_agent.errors import WireError
from stream_processor.policy.consent import (
    ALL_PURPOSES,
    ConsentStatus,
    GivenBy,
    decode_consent,
)
from stream_processor.policy.keys import is_internal
from stream_processor.quarantine import Refusal
from stream_processor.tail import TailRecord, ViewFollower


class SiteConsent(BaseModel):
    site: str
    residents_consenting: int = Field(description="residents with at least one granted purpose")
    residents_withdrawn: int = Field(description="residents whose every record is a withdrawal")
    minors_guardian_consent: int = Field(description="minors with a guardian's granted consent")


@dataclass(frozen=True, slots=True)
class _Entry:
    tenant: str
    site: str
    subject: bytes
    every_purpose: bool
    granted: bool
    minor_by_guardian: bool
    at_ms: int


class ConsentCounts:
    """Latest consent record per ledger key, without pseudonyms; thread-safe."""

    def __init__(self) -> None:
        self._pepper = secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()

    def _digest(self, data: bytes) -> bytes:
        return hmac.new(self._pepper, data, hashlib.sha256).digest()[:16]

    def take(self, key: bytes | None, value: bytes | None) -> Refusal | None:
        if key is None or is_internal(key):
            return None
        k = self._digest(key)
        if value is None:
            with self._lock:
                self._entries.pop(k, None)
            return None
        try:
            r = decode_consent(value)
        except WireError as exc:
            return Refusal(exc.reason, exc.detail[:300])
        granted = r.status is ConsentStatus.GRANTED
        entry = _Entry(
            r.tenant,
            r.site,
            self._digest(f"{r.tenant}/{r.site}/{r.subject}".encode()),
            r.purpose == ALL_PURPOSES,
            granted,
            granted and r.minor and r.given_by is GivenBy.GUARDIAN,
            r.at_ms,
        )
        with self._lock:
            self._entries[k] = entry
        return None

    def of_tenant(self, tenant: str) -> list[SiteConsent]:
        with self._lock:
            entries = [e for e in self._entries.values() if e.tenant == tenant]
        by_site: dict[str, dict[bytes, list[_Entry]]] = {}
        for e in entries:
            by_site.setdefault(e.site, {}).setdefault(e.subject, []).append(e)
        out = []
        for site, subjects in sorted(by_site.items()):
            live = [_in_force(es) for es in subjects.values()]
            out.append(
                SiteConsent(
                    site=site,
                    residents_consenting=sum(1 for es in live if es),
                    residents_withdrawn=sum(1 for es in live if not es),
                    minors_guardian_consent=sum(
                        1 for es in live if any(e.minor_by_guardian for e in es)
                    ),
                )
            )
        return out


def _in_force(entries: list[_Entry]) -> list[_Entry]:
    """A subject's grants still in force: a later withdrawal of every purpose ends them all
    (the processors' rule, ``policy.consent.effective_consent``)."""
    everything = max((e.at_ms for e in entries if e.every_purpose), default=None)
    return [
        e
        for e in entries
        if e.granted and not e.every_purpose and (everything is None or e.at_ms > everything)
    ]


class ConsentCountsFollower(ViewFollower[ConsentCounts]):
    """Tails the consent topic into ``ConsentCounts`` (quarantine like every tail)."""

    client_id = "facegate-web-consent"
    thread_name = "consent-counts"

    def take(self, record: TailRecord) -> Refusal | None:
        return self.view.take(record.key, record.value)
