"""A small in-memory rate limit for public forms (per client address, sliding window).

One process's memory only: behind several web processes, put the limit in
the reverse proxy as well. It keeps the open-request counter meaningful
against a script, not against a determined attacker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimit:
    def __init__(
        self,
        max_events: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self._max = max_events
        self._window = window_s
        self._clock = clock
        self._max_clients = max_clients
        self._seen: dict[str, deque[float]] = {}

    def allow(self, client: str) -> bool:
        now = self._clock()
        q = self._seen.get(client)
        if q is None:
            if len(self._seen) >= self._max_clients:
                self._evict(now)
            q = self._seen[client] = deque()
        while q and now - q[0] > self._window:
            q.popleft()
        if len(q) >= self._max:
            return False
        q.append(now)
        return True

    def _evict(self, now: float) -> None:
        stale = [c for c, q in self._seen.items() if not q or now - q[-1] > self._window]
        for c in stale:
            del self._seen[c]
        if len(self._seen) >= self._max_clients:  # still full: forget the oldest half
            for c in list(self._seen)[: self._max_clients // 2]:
                del self._seen[c]
