"""The live keys of the consent ledger, followed incrementally (kafka-python, one thread).

An erasure tombstones every ledger record of its subject, so it needs the keys
in force now. Reading the compacted topic from the start for each erasure costs
a connection and a full scan; this keeps one consumer and a set of live keys,
and before each answer reads only what was written since (up to the end offsets
as of the call, so the answer includes every record written before it).
"""

from __future__ import annotations

from stream_processor.errors import BrokerError
from stream_processor.runtime.ledger_client import Auth, LedgerReader


class LedgerIndex:
    def __init__(
        self, bootstrap: str, topic: str, timeout_s: float = 30.0, auth: Auth | None = None
    ) -> None:
        self._auth = auth or {}
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout_s = timeout_s
        self._reader: LedgerReader | None = None
        self._live: set[bytes] = set()

    def _apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self._live.discard(key)
        else:
            self._live.add(key)

    def keys(self) -> set[bytes]:
        """Every key with a live (non-tombstoned) record, as of now."""
        if self._reader is None:
            self._reader = LedgerReader(
                self._bootstrap, self._topic, "facegate-erasure-ledger", self._timeout_s,
                fetch_max_wait_ms=50, **self._auth,
            )  # fmt: skip
        try:
            self._reader.catch_up(self._apply)
        except BrokerError:
            self.close()  # start over next time: the set may be half-updated
            self._live = set()
            raise
        return set(self._live)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
