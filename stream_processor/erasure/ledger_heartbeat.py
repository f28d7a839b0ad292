"""Heartbeats on the consent and policies ledgers, so their compaction keeps the
"gone within" bound a receipt states (docs/processor.md).

Compaction never touches a topic's active segment, and a segment rolls only on a
write: on a quiet ledger a tombstoned subject's record would stay for as long as
nobody writes. Every ``segment.ms / 2`` the erasure worker writes one record under
``_heartbeat/erasure/<app id>`` (one key per worker app: compaction keeps one), which
every ledger reader skips (``policy.keys.is_heartbeat``).

Why the erasure worker, and not the processor or a role of its own:

- the processor reads the ledgers and must never write them (a worker that can write
  consent can forge it); its own tables' changelogs it still beats itself;
- the erasure worker is the process that issues receipts stating the bound, and it
  must run wherever erasures are honoured; it already writes the consent ledger (an
  erasure withdraws and tombstones the subject's consent), so consent costs nothing;
- Kafka cannot narrow a WRITE grant to heartbeat keys, so a separate "keeper" role
  carried by the same process would give it the same power under a second password.
  The erasure role gains WRITE on policies only (no read, no config change); a policy
  it wrote would still be put on the audit record by the follower, like any other;
- the web app already writes both, but it is optional and faces the network: the
  bound must not depend on a dashboard running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from stream_processor.policy.keys import heartbeat_key
from stream_processor.quarantine import ConsumerMetrics
from stream_processor.runtime.settings import Topics

log = logging.getLogger(__name__)

#: ``consumer`` label of a failed round (a fixed name: bounded).
OUTAGE_LABEL = "ledger_heartbeat"


class Send(Protocol):
    def __call__(self, topic: str, key: bytes, value: bytes) -> Awaitable[object]: ...


def heartbeat_interval_s(topics: Topics) -> float:
    """Half the ledgers' ``segment.ms`` (at least 1 s): a segment then rolls within
    1.5 ``segment.ms`` of the write that must be compacted."""
    return max(1.0, topics.ledger_segment_ms / 2000)


def writer_key(app_id: str) -> bytes:
    return heartbeat_key(f"erasure/{app_id}")


class LedgerHeartbeat:
    """One beat writes the time (ms) under ``writer_key(app_id)`` to both ledgers."""

    def __init__(
        self,
        send: Send,
        topics: Topics,
        app_id: str,
        consumers: ConsumerMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._send = send
        self._ledgers = (topics.consent, topics.policies)
        self._key = writer_key(app_id)
        self._consumers = consumers
        self._clock = clock

    async def beat(self) -> bool:
        """Write one beat to each ledger; ``False`` if any write failed. It must not
        raise: an exception would end Faust's timer, and with it every later beat. A
        failure is counted as an outage of ``ledger_heartbeat``, logged by type only,
        and the next round writes again."""
        value = str(int(self._clock() * 1000)).encode()
        try:
            for topic in self._ledgers:
                await self._send(topic, self._key, value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next round retries; logged by type only
            self._consumers.outage_retries.labels(OUTAGE_LABEL).inc()
            log.warning("ledger heartbeat failed (%s); the next round writes again",
                        type(exc).__name__)  # fmt: skip
            return False
        return True
