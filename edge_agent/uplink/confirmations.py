"""The gate's side of delivery confirmation: apply the cloud's confirmations to the
outbox, and decide when sent-but-unconfirmed events must be published again.

Re-sending goes back to the oldest unconfirmed row and publishes it and every
later row again, in outbox order (go-back-N): the cloud sees each device's
events in order, and what was already stored is dropped there by event id.
While no confirmation comes at all (the bridge or Kafka is down), each further
round waits twice as long as the one before (up to ``MAX_BACKOFF`` timeouts),
so a long cloud outage does not make the gate push its backlog into the broker
again every timeout; the first confirmation resets the wait.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

from edge_agent.errors import WireError
from edge_agent.outbox import SqliteOutbox
from edge_agent.wire.confirms import confirmation_for
from edge_agent.wire.topics import DeviceIdentity

log = logging.getLogger(__name__)

#: The longest wait between two re-send rounds, in timeouts.
MAX_BACKOFF = 32


class Confirmations:
    """Thread-safe intake (``receive`` from the MQTT thread), applied by ``apply``."""

    def __init__(
        self,
        outbox: SqliteOutbox,
        identity: DeviceIdentity,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._identity = identity
        self._timeout_ms = int(timeout_s * 1000)
        self._clock = clock
        self._inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._rewound_at_ms = 0
        self._backoff = 1
        self.confirmed = 0
        self.invalid = 0
        self.resends = 0

    def receive(self, payload: bytes) -> None:
        self._inbox.put(payload)

    def apply(self) -> int:
        """Remove the rows every received confirmation covers; returns how many."""
        removed = 0
        while True:
            try:
                payload = self._inbox.get_nowait()
            except queue.Empty:
                break
            try:
                message = confirmation_for(payload, self._identity)
            except WireError as exc:
                # Only the bridge may write this topic; counted, never acted on.
                self.invalid += 1
                log.error("ignored a delivery confirmation (%s)", exc.reason)
                continue
            if message.command_id is not None:
                removed += self._outbox.confirm_ack(message.command_id)
            else:
                assert message.from_seq is not None and message.through_seq is not None
                removed += self._outbox.confirm(message.from_seq, message.through_seq)
        self.confirmed += removed
        if removed:
            self._backoff = 1
        return removed

    def rewind(self, last_sent: int) -> int | None:
        """The cursor to publish from again when the oldest unconfirmed row timed out,
        else None. At most once per timeout (times the back-off), so the re-sent rows
        get their chance."""
        now_ms = int(self._clock() * 1000)
        if now_ms - self._rewound_at_ms < self._timeout_ms * self._backoff:
            return None
        oldest = self._outbox.oldest_sent()
        if oldest is None or now_ms - oldest[1] < self._timeout_ms or oldest[0] > last_sent:
            return None
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        self._rewound_at_ms = now_ms
        self.resends += 1
        log.warning(
            "events sent %.0fs ago are not confirmed durable by the cloud; publishing"
            " again from the oldest (duplicates are dropped by event id)",
            (now_ms - oldest[1]) / 1000,
        )
        return oldest[0] - 1
