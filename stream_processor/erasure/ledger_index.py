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


class FollowedTopic:
    """A compacted topic followed incrementally by one kept reader: each ``_catch_up``
    applies only what was written since the last one (up to the end offsets as of
    the call). A broker error drops the reader and the state ``_reset`` names."""

    group = "facegate-erasure-ledger"

    def __init__(
        self, bootstrap: str, topic: str, timeout_s: float = 30.0, auth: Auth | None = None
    ) -> None:
        self._auth = auth or {}
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout_s = timeout_s
        self._reader: LedgerReader | None = None

    def _apply(self, key: bytes, value: bytes | None) -> None:
        raise NotImplementedError

    def _reset(self) -> None:
        """Forget what a half-applied catch-up may have left (nothing, by default)."""

    def _catch_up(self) -> None:
        if self._reader is None:
            self._reader = LedgerReader(
                self._bootstrap, self._topic, self.group, self._timeout_s,
                fetch_max_wait_ms=50, **self._auth,
            )  # fmt: skip
        try:
            self._reader.catch_up(self._apply)
        except BrokerError:
            self.close()
            self._reset()
            raise

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class LedgerIndex(FollowedTopic):
    def __init__(
        self, bootstrap: str, topic: str, timeout_s: float = 30.0, auth: Auth | None = None
    ) -> None:
        super().__init__(bootstrap, topic, timeout_s, auth)
        self._live: set[bytes] = set()

    def _apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self._live.discard(key)
        else:
            self._live.add(key)

    def _reset(self) -> None:
        self._live = set()  # start over next time: the set may be half-updated

    def keys(self) -> set[bytes]:
        """Every key with a live (non-tombstoned) record, as of now."""
        self._catch_up()
        return set(self._live)
