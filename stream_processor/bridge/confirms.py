"""Delivery confirmations: which of a device's events Kafka holds, told back to the device.

The bridge notes each event's sequence number when Kafka acknowledged its
record (raw topic or dead letter) and, at most once per ``interval_s``, sends
each device one ``DeliveryConfirmation`` per contiguous range on its
``confirms`` topic (QoS 0: a lost one costs the device one re-send). Batched
so that the cost per event is a list append.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from edge_agent.wire.confirms import DeliveryConfirmation, encode_confirmation
from edge_agent.wire.topics import parse_device_topic

#: Ranges sent to one device per round; the rest waits for the next round (a device
#: whose events arrive with many gaps cannot make one round unbounded).
MAX_RANGES_PER_ROUND = 64


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged, inclusive ranges covering exactly the given numbers."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and ranges[-1][1] + 1 == seq:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


class Confirmer:
    """Not locked: used on the bridge's event-loop thread only."""

    def __init__(
        self, interval_s: float, clock: Callable[[], float] = time.time,
        max_ranges: int = MAX_RANGES_PER_ROUND,
    ) -> None:  # fmt: skip
        self._interval_s = interval_s
        self._clock = clock
        self._max_ranges = max_ranges
        self._seqs: dict[str, list[int]] = {}
        self._next_at = 0.0

    def add(self, events_topic: str, seq: int) -> None:
        seqs = self._seqs.get(events_topic)
        if seqs is None:
            self._seqs[events_topic] = [seq]
        else:
            seqs.append(seq)

    def due(self) -> bool:
        return bool(self._seqs) and self._clock() >= self._next_at

    def take(self) -> list[tuple[str, bytes]]:
        """The confirmations to publish now, as (topic, payload); the numbers they cover
        are forgotten (a device times out and re-sends if one is lost)."""
        now = self._clock()
        self._next_at = now + self._interval_s
        pending, self._seqs = self._seqs, {}
        out: list[tuple[str, bytes]] = []
        for topic, seqs in pending.items():
            identity = parse_device_topic(topic, "events")
            if identity is None:
                continue  # never added: only accepted device topics carry a seq
            ranges = seq_ranges(seqs)
            for low, high in ranges[: self._max_ranges]:
                message = DeliveryConfirmation(
                    schema_version=1, tenant=identity.tenant, site=identity.site,
                    gate=identity.gate, device=identity.device, from_seq=low,
                    through_seq=high, confirmed_at_ms=int(now * 1000),
                )  # fmt: skip
                out.append((f"{identity.prefix}/confirms", encode_confirmation(message)))
            rest = ranges[self._max_ranges :]
            if rest:
                self._seqs[topic] = [s for low, high in rest for s in range(low, high + 1)]
        return out

    def __len__(self) -> int:
        return sum(map(len, self._seqs.values()))
