"""Bounds of every number on the wire, shared by the contract, its JSON Schema and the
settings of both sides (the edge's outbox and the cloud's bridge)."""

from __future__ import annotations

#: The largest integer every reader holds exactly: a JSON number in any language
#: (IEEE doubles), SQLite INTEGER, PostgreSQL bigint, msgpack int64.
MAX_SAFE_INT = 2**53 - 1

#: Earliest and latest plausible event time (2020-01-01 .. 2100-01-01, ms).
MIN_TIME_MS = 1_577_836_800_000
MAX_TIME_MS = 4_102_444_800_000

#: How long a device may hold an event in its outbox before it is purged, and so
#: the oldest event the cloud takes: the edge's default and the bridge's default.
MAX_QUEUE_AGE_S = 7 * 24 * 3600

#: Templates one command may remove from one device's gallery. A device keeps at
#: most 10 per resident (``gallery.enroll.MAX_TEMPLATES``); the rest is headroom.
MAX_TEMPLATES_REMOVED = 1000

#: Queued events one command may purge from one device's outbox: a gate makes a
#: few events a second, so a week of them is far below this.
MAX_EVENTS_PURGED = 100_000_000

#: Nesting of every message of the contract: flat objects of scalars.
MAX_DEPTH = 1
