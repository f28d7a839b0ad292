"""The export's ports over the event store and the consent ledger."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from stream_processor.store.base import EventStore


class StoreSubjectEvents:
    """``SubjectEvents`` over an ``EventStore`` (``events_of_subject``)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def events_for_subject(
        self, tenant: str, site: str, subject: str
    ) -> Sequence[Mapping[str, Any]]:
        return [e._asdict() for e in self._store.events_of_subject(tenant, site, subject)]


class LedgerConsent:
    """``ConsentHistory`` over the compacted consent topic: the subject's records in
    force now (earlier changes are in the export's opened audit entries)."""

    def __init__(self, read_ledger: Callable[[], Mapping[bytes, bytes]]) -> None:
        self._read = read_ledger

    def consent_history(self, tenant: str, site: str, subject: str) -> Sequence[Mapping[str, Any]]:
        from stream_processor.policy.consent import decode_consent

        prefix = f"{tenant}/{site}/{subject}/".encode()
        out: list[Mapping[str, Any]] = []
        for key, value in sorted(self._read().items()):
            if key.startswith(prefix):
                doc = msgspec.to_builtins(decode_consent(value))
                assert isinstance(doc, dict)
                out.append(doc)
        return sorted(out, key=lambda d: int(d["at_ms"]))
