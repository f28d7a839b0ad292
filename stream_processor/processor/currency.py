"""A batch is decided only against ledger views that are current for it.

The raw topic and the ledgers (consent, policies) are separate topics with no
order between them, and a refusal is final: an event decided on a view that
had not yet read a grant is discarded for good, one decided before a withdrawal
was read is stored. So before a batch is decided, each ledger view must have
applied every record up to the ledger's end offsets as observed after the
batch was fetched: a ledger record written before an event of the batch was
written is then in the view. End offsets observed earlier still count when
they are newer (by the clock, with a margin for skew between hosts) than every
record of the batch, so a worker reading a backlog does not ask per batch.

    ends_cover    pure: do these observed end offsets bound this batch?
    view_current  pure: has a view applied everything up to these end offsets?
    LedgerGate    waits (bounded per step, never deciding on a stale view) until
                  both hold; while it waits long the input is paused and the worker
                  stays in its consumer group, as during a store outage
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.processor.service import InputControl

log = logging.getLogger(__name__)

#: Reads the end offset (next offset to be written) per partition of a topic.
EndOffsets = Callable[[str], Awaitable[dict[int, int]]]
#: Offset of the last record a worker's view of ``ledger`` has applied (-1: none).
ViewPosition = Callable[[str, int], int]


@dataclass(frozen=True)
class Observed:
    """End offsets per ledger and when they were read (both clocks)."""

    ends: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    at_monotonic: float = float("-inf")
    at_ms: int = -(2**62)


def ends_cover(observed: Observed, fetched_at: float, newest_ms: int, skew_ms: int) -> bool:
    """Observed after the fetch, or later by the wall clock than every record of the batch."""
    return observed.at_monotonic >= fetched_at or observed.at_ms >= newest_ms + skew_ms


def view_current(positions: Mapping[int, int], ends: Mapping[int, int]) -> bool:
    """Every partition's view has applied its last record before ``ends`` (an empty
    partition, end 0, needs nothing)."""
    return all(end <= 0 or positions.get(p, -1) >= end - 1 for p, end in ends.items())


@dataclass(frozen=True)
class GateTiming:
    #: Margin for clock skew between the raw topic's producers and this worker.
    skew_ms: int = 2_000
    #: How often a lagging view is looked at again.
    poll_s: float = 0.005
    #: Waiting longer than this pauses the input and logs (an outage, not a lag).
    pause_after_s: float = 2.0
    #: While paused, ``keep_alive`` is called this often (below max.poll.interval.ms).
    keep_alive_s: float = 5.0


class LedgerGate:
    def __init__(
        self,
        end_offsets: EndOffsets,
        position: ViewPosition,
        ledgers: Mapping[str, str],
        metrics: ProcessorMetrics,
        *,
        timing: GateTiming = GateTiming(),  # noqa: B008 - frozen
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``ledgers``: ledger name (a metric label) → its topic."""
        self._end_offsets = end_offsets
        self._position = position
        self._ledgers = dict(ledgers)
        self._metrics = metrics
        self._timing = timing
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._observed = Observed()

    def _lagging(self) -> list[str]:
        return [
            name
            for name, ends in self._observed.ends.items()
            if not view_current({p: self._position(name, p) for p in ends}, ends)
        ]

    async def _observe(self) -> None:
        at_monotonic, at_ms = self._monotonic(), int(self._clock() * 1000)
        names = list(self._ledgers)
        try:
            got = await asyncio.gather(*(self._end_offsets(self._ledgers[n]) for n in names))
        finally:
            self._metrics.ledger_look_seconds.observe(self._monotonic() - at_monotonic)
        self._observed = Observed(dict(zip(names, got, strict=True)), at_monotonic, at_ms)

    async def is_current(self, fetched_at: float, newest_ms: int) -> bool:
        """One look, without waiting (it may read the end offsets)."""
        return not await self._check(fetched_at, newest_ms)

    async def wait_current(self, fetched_at: float, newest_ms: int, control: InputControl) -> None:
        """Return once every ledger view is current for a batch fetched at ``fetched_at``
        (monotonic) whose newest record is stamped ``newest_ms``."""
        started = self._monotonic()
        waiting: _Wait | None = None
        try:
            while True:
                lagging = await self._check(fetched_at, newest_ms)
                if not lagging:
                    return
                if waiting is None:
                    waiting = _Wait(self._metrics, control, self._timing, lagging)
                await waiting.step(self._monotonic() - started, lagging)
                await self._sleep(self._timing.poll_s)
        finally:
            if waiting is not None:
                waiting.done(self._monotonic() - started)

    async def _check(self, fetched_at: float, newest_ms: int) -> Sequence[str]:
        """The ledgers whose view is not yet current (all of them if unreadable)."""
        if not ends_cover(self._observed, fetched_at, newest_ms, self._timing.skew_ms):
            try:
                await self._observe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - unreadable ledger: wait, never guess
                log.debug("ledger end offsets not read: %s", type(exc).__name__)
                return list(self._ledgers)
        return self._lagging()


class _Wait:
    """One wait of the gate: counted once, paused (and logged) once it lasts."""

    def __init__(
        self, metrics: ProcessorMetrics, control: InputControl, timing: GateTiming,
        lagging: Sequence[str],
    ) -> None:  # fmt: skip
        self._metrics = metrics
        self._control = control
        self._timing = timing
        self._paused = False
        self._alive_at = 0.0
        for name in lagging:
            metrics.ledger_waits.labels(name).inc()

    async def step(self, waited: float, lagging: Sequence[str]) -> None:
        if not self._paused and waited >= self._timing.pause_after_s:
            self._paused = True
            self._alive_at = waited
            self._control.pause()
            self._metrics.ledger_stale.set(1)
            log.warning("ledger view behind for %.1fs (%s); input paused until it is current",
                        waited, ", ".join(lagging))  # fmt: skip
        elif self._paused and waited - self._alive_at >= self._timing.keep_alive_s:
            self._alive_at = waited
            await self._control.keep_alive()

    def done(self, waited: float) -> None:
        self._metrics.ledger_wait_seconds.observe(waited)
        if self._paused:
            self._metrics.ledger_stale.set(0)
            self._control.resume()
            log.warning("ledger views current again after %.1fs; input resumed", waited)
