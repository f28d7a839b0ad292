"""Unique, time-ordered event ids (UUIDv7, RFC 9562) without a dependency."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
#: A clock that steps back further than this starts a new sequence: one wrong
#: time (a far-future RTC reading, a test's fixed clock) must not pin every
#: later id of the process to that time.
BACKSTEP_TOLERANCE_MS = 10_000


def new_event_id(now_ms: int | None = None) -> str:
    """Return a UUIDv7 string: 48-bit ms timestamp, then a counter and randomness.

    Ids from one process sort by creation time even within a millisecond
    (the 12-bit ``rand_a`` field is used as a monotonic counter) and across
    clock steps back of up to ``BACKSTEP_TOLERANCE_MS``; a larger step back
    restarts the order at the new time (the 62 random bits keep ids unique).
    """
    global _last_ms, _counter
    with _lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if _last_ms - BACKSTEP_TOLERANCE_MS <= ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms += 1
                _counter = 0
        else:
            _counter = 0
        _last_ms = ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand_b
    return str(uuid.UUID(int=value))


def event_id_ms(event_id: str) -> int:
    """The creation time (ms since the epoch) inside a UUIDv7 event id."""
    return uuid.UUID(event_id).int >> 80
