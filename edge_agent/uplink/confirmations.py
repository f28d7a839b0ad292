"""The gate's side of delivery confirmation: apply the cloud's confirmations to the
outbox, and decide when sent-but-unconfirmed events must be published again.

Re-sending goes back to the oldest unconfirmed row and publishes it and the
later rows again, in outbox order (go-back-N), at most ``resend_window`` of them
per round (the publisher then carries on with new rows): the cloud sees each
device's events in order, and what was already stored is dropped there by event
id. While no confirmation comes at all (the bridge or Kafka is down), the wait
between rounds doubles up to a cap, with jitter (``resend.resend_delay_s``), so a
long cloud outage does not make the gate push its backlog into the broker again
every timeout; the first confirmation resets the wait.
"""

from __future__ import annotations

import logging
import queue
import random
import time
from collections.abc import Callable

from edge_agent.errors import WireError
from edge_agent.outbox import SqliteOutbox
from edge_agent.uplink.resend import DEFAULT_CAP_S, DEFAULT_JITTER, resend_delay_s, rounds_after
from edge_agent.wire.confirms import confirmation_for
from edge_agent.wire.topics import DeviceIdentity

log = logging.getLogger(__name__)

class Confirmations:
    """Thread-safe intake (``receive`` from the MQTT thread), applied by ``apply``."""

    def __init__(
        self,
        outbox: SqliteOutbox,
        identity: DeviceIdentity,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
        *,
        cap_s: float = DEFAULT_CAP_S,
        jitter: float = DEFAULT_JITTER,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._identity = identity
        self._timeout_s = timeout_s
        self._timeout_ms = int(timeout_s * 1000)
        self._cap_s = cap_s
        self._jitter = jitter
        self._clock = clock
        self._draw = draw
        self._inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._rewound_at_ms = 0
        self._rounds = 0
        self._wait_ms = self._timeout_ms
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
            self._rounds = rounds_after(self._rounds, progressed=True)
            self._wait_ms = self._delay_ms()
        return removed

    def _delay_ms(self) -> int:
        return int(
            resend_delay_s(self._rounds, self._timeout_s, self._cap_s, self._jitter, self._draw())
            * 1000
        )

    def rewind(self, last_sent: int) -> int | None:
        """The cursor to publish from again when the oldest unconfirmed row timed out,
        else None. At most once per back-off wait (one timeout after progress), so the
        re-sent rows get their chance."""
        now_ms = int(self._clock() * 1000)
        if now_ms - self._rewound_at_ms < self._wait_ms:
            return None
        oldest = self._outbox.oldest_sent()
        if oldest is None or now_ms - oldest[1] < self._timeout_ms or oldest[0] > last_sent:
            return None
        self._rounds = rounds_after(self._rounds, progressed=False)
        self._wait_ms = self._delay_ms()
        self._rewound_at_ms = now_ms
        self.resends += 1
        log.warning(
            "events sent %.0fs ago are not confirmed durable by the cloud; publishing"
            " again from the oldest (duplicates are dropped by event id)",
            (now_ms - oldest[1]) / 1000,
        )
        return oldest[0] - 1
