"""The device status report: sampled from the agent's own counters, published every ``every_s``.

Live state, not history: it is published at QoS 0 straight to the broker (not
through the outbox); a report lost while offline is replaced by the next, and
the cloud marks the device offline from the silence. Frames/s and decision
latency are taken over the last interval from the Prometheus counters the
agent already keeps (decision latency: the interval's mean, first frame →
outbox).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from importlib import metadata

from edge_agent.errors import WireError
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.wire.bounds import MAX_QUEUE_AGE_S
from edge_agent.wire.status import (
    MAX_OUTBOX,
    MAX_TEMPLATES,
    DeviceStatus,
    decode_status,
    encode_status,
    status_topic,
)
from edge_agent.wire.topics import DeviceIdentity

log = logging.getLogger(__name__)


def software_version() -> str:
    try:
        return metadata.version("facegate")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class StatusReporter:
    def __init__(
        self,
        identity: DeviceIdentity,
        outbox: SqliteOutbox,
        send: Callable[[str, bytes], bool],
        models: Sequence[str] = (),
        metrics: EdgeMetrics | None = None,
        every_s: float = 10.0,
        templates: Callable[[], tuple[int, int]] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._identity, self._outbox, self._send = identity, outbox, send
        self._models = [m[:64] for m in models][:8]
        self._metrics, self._every = metrics, every_s
        self._templates = templates
        self._clock, self._mono = clock, monotonic
        self._started = monotonic()
        self._next = 0.0
        self._last = (monotonic(), *self._counters())
        self._version = software_version()
        self.sent = 0

    def _counters(self) -> tuple[float, float, float]:
        """(frames read, decision latency sum s, decisions) so far."""
        if self._metrics is None:
            return 0.0, 0.0, 0.0
        reg = self._metrics.registry
        frames = reg.get_sample_value("facegate_edge_frames_total", {"result": "ok"}) or 0.0
        lsum = reg.get_sample_value("facegate_edge_stage_seconds_sum", {"stage": "decision"})
        lcount = reg.get_sample_value("facegate_edge_stage_seconds_count", {"stage": "decision"})
        return frames, lsum or 0.0, lcount or 0.0

    def _gallery(self) -> tuple[int, int]:
        """(templates, residents with a template) of the gallery."""
        if self._templates is not None:
            return self._templates()
        if self._metrics is None:
            return 0, 0
        reg = self._metrics.registry
        templates = reg.get_sample_value("facegate_edge_gallery_templates") or 0
        residents = reg.get_sample_value("facegate_edge_gallery_residents") or 0
        return int(templates), int(residents)

    def sample(self) -> DeviceStatus:
        now, mono = self._clock(), self._mono()
        frames, lsum, lcount = self._counters()
        t0, f0, s0, c0 = self._last
        self._last = (mono, frames, lsum, lcount)
        elapsed = max(mono - t0, 1e-3)
        latency_ms = (lsum - s0) / (lcount - c0) * 1000 if lcount > c0 else 0.0
        oldest = self._outbox.oldest_ms()
        age = 0.0 if oldest is None else min(MAX_QUEUE_AGE_S, max(0.0, now - oldest / 1000))
        templates, residents = self._gallery()
        i = self._identity
        return DeviceStatus(
            schema_version=1, tenant=i.tenant, site=i.site, gate=i.gate, device=i.device,
            sent_at_ms=int(now * 1000), uptime_s=int(mono - self._started),
            outbox_depth=min(self._outbox.depth(), MAX_OUTBOX), oldest_queued_age_s=round(age, 1),
            gallery_templates=min(max(templates, 0), MAX_TEMPLATES),
            gallery_residents=min(max(residents, 0), MAX_TEMPLATES), models=list(self._models),
            frames_per_s=round(min((frames - f0) / elapsed, 1000.0), 2),
            decision_latency_ms=round(min(latency_ms, 600_000.0), 1),
            software_version=self._version,
        )  # fmt: skip

    def tick(self) -> bool:
        """Publish a report if one is due; True if one was handed to the broker."""
        if self._mono() < self._next:
            return False
        self._next = self._mono() + self._every
        try:
            payload = encode_status(self.sample())
            decode_status(payload)  # the cloud's own check: never send what it refuses
        except WireError as exc:  # a bound we got wrong: say so, keep running
            log.error("device status not sent: %s", exc)
            return False
        if self._send(status_topic(self._identity), payload):
            self.sent += 1
            return True
        return False
