"""MQTT acknowledgements released in arrival order once Kafka has each record."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class Pending:
    """One delivery awaiting Kafka's confirmation."""

    __slots__ = ("done", "generation", "mid")

    def __init__(self, mid: int, generation: int) -> None:
        self.mid = mid
        self.generation = generation
        self.done = False


class OrderedAcks:
    """Tracks deliveries; ``done(pending)`` releases the longest finished prefix.

    MQTT wants PUBACKs in the order the PUBLISHes arrived; Kafka confirms
    per partition, so completions can come out of order. Not locked: the
    bridge adds, completes and resets on its event-loop thread only (delivery
    reports are served there too); ``len()`` may be read from any thread.
    """

    def __init__(self, release: Callable[[int], None]) -> None:
        self._release = release
        self._queue: deque[Pending] = deque()
        self._generation = 0

    def add(self, mid: int) -> Pending:
        pending = Pending(mid, self._generation)
        self._queue.append(pending)
        return pending

    def done(self, pending: Pending) -> int:
        """Mark one delivery confirmed; returns how many acks were released."""
        if pending.generation != self._generation:
            return 0  # delivered before a reconnect; the broker redelivers it
        pending.done = True
        queue = self._queue
        if queue[0] is not pending:
            return 0  # an earlier delivery is still unconfirmed
        released = 0
        release = self._release
        while queue and queue[0].done:
            release(queue.popleft().mid)
            released += 1
        return released

    def reset(self) -> int:
        """Forget everything in flight (after a disconnect the broker redelivers it)."""
        dropped = len(self._queue)
        self._queue.clear()
        self._generation += 1
        return dropped

    @property
    def generation(self) -> int:
        """Bumped by every ``reset``."""
        return self._generation

    def __len__(self) -> int:
        return len(self._queue)
