"""Delivery confirmations: which of a device's events and acks Kafka holds, told back
to the device.

The bridge notes each event's sequence number (and each command ack's command
id) when Kafka acknowledged its record (raw topic or dead letter) and, at most
once per ``interval_s``, sends each device one ``DeliveryConfirmation`` per
contiguous range (and per ack) on its ``confirms`` topic (QoS 0: a lost one
costs the device one re-send). Batched so that the cost per event is a list
append.
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
    ordered = sorted(set(seqs))
    if not ordered:
        return []
    if ordered[-1] - ordered[0] + 1 == len(ordered):
        return [(ordered[0], ordered[-1])]  # the usual case: no gap
    ranges: list[tuple[int, int]] = []
    for seq in ordered:
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
        self._acks: list[tuple[str, str]] = []
        self._next_at = 0.0

    def add(self, events_topic: str, seq: int) -> None:
        seqs = self._seqs.get(events_topic)
        if seqs is None:
            self._seqs[events_topic] = [seq]
        else:
            seqs.append(seq)

    def add_ack(self, acks_topic: str, command_id: str) -> None:
        self._acks.append((acks_topic, command_id))

    def due(self) -> bool:
        return bool(self._seqs or self._acks) and self._clock() >= self._next_at

    def take(self) -> list[tuple[str, bytes]]:
        """The confirmations to publish now, as (topic, payload); the numbers they cover
        are forgotten (a device times out and re-sends if one is lost)."""
        now = self._clock()
        self._next_at = now + self._interval_s
        pending, self._seqs = self._seqs, {}
        out = self._take_acks(int(now * 1000))
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

    def _take_acks(self, now_ms: int) -> list[tuple[str, bytes]]:
        acks, self._acks = self._acks, []
        out: list[tuple[str, bytes]] = []
        for topic, command_id in acks:
            identity = parse_device_topic(topic, "acks")
            if identity is None:
                continue  # never added: only accepted acks carry a command id
            message = DeliveryConfirmation(
                schema_version=1, tenant=identity.tenant, site=identity.site,
                gate=identity.gate, device=identity.device, command_id=command_id,
                confirmed_at_ms=now_ms,
            )  # fmt: skip
            out.append((f"{identity.prefix}/confirms", encode_confirmation(message)))
        return out

    def __len__(self) -> int:
        return sum(map(len, self._seqs.values())) + len(self._acks)
