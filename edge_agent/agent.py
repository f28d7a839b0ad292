"""The edge agent: video and credentials in, gate decisions out, anonymized events queued.

Threads: the main loop (frames, credentials, housekeeping) and the uplink
(MQTT publishing and commands). They share the outbox (thread-safe) and the
gallery view, which is swapped under ``_lock``; a command's removal and a
decision's append are serialised by that lock, so no event of a removed
subject is queued after its purge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from edge_agent.access.gate import GateActuator
from edge_agent.access.inputs import CredentialInput
from edge_agent.access.resolve import resolve
from edge_agent.decision import Outcome, Subject, event_maker
from edge_agent.errors import ConfigError, EdgeError, OutboxFull
from edge_agent.gallery.credentials import CredentialHasher
from edge_agent.gallery.model import GalleryData, build_index
from edge_agent.gallery.store import GalleryFile
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.video.sources import Frame, FrameSource
from edge_agent.vision.recognizer import GalleryView, Recognizer
from edge_agent.wire import EventKind, GateEvent
from edge_agent.wire.bounds import MAX_QUEUE_AGE_S
from edge_agent.wire.topics import DeviceIdentity

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Lookup:
    """Everything decisions need from the gallery, rebuilt on every change."""

    view: GalleryView
    cards: dict[str, Subject]
    pins: dict[str, Subject]
    face_subjects: frozenset[str]
    subjects: frozenset[str]
    templates: int


def build_lookup(data: GalleryData, embedder_model: str | None) -> Lookup:
    if data.model is not None and embedder_model is not None and data.model != embedder_model:
        raise ConfigError(
            f"the gallery's templates were made with {data.model}, the embedder is "
            f"{embedder_model}: re-enroll, or configure the matching embedder"
        )
    subjects = tuple(Subject(r.pseudonym, r.consent_ref) for r in data.records)
    cards = {c: s for r, s in zip(data.records, subjects, strict=True) for c in r.cards}
    pins = {r.pin: s for r, s in zip(data.records, subjects, strict=True) if r.pin}
    index = build_index(data)
    return Lookup(
        view=GalleryView(index, subjects),
        cards=cards,
        pins=pins,
        face_subjects=frozenset(r.pseudonym for r in data.records if r.templates),
        subjects=frozenset(s.pseudonym for s in subjects),
        templates=len(index),
    )


@dataclass
class EdgeAgent:
    identity: DeviceIdentity
    purpose: str
    gallery: GalleryFile
    hasher: CredentialHasher
    outbox: SqliteOutbox
    metrics: EdgeMetrics
    actuator: GateActuator
    recognizer: Recognizer | None = None
    source: FrameSource | None = None
    credentials: Sequence[CredentialInput] = ()
    outbox_max_age_s: float = MAX_QUEUE_AGE_S
    purge_interval_s: float = 60.0
    gallery_reload_s: float = 2.0
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _lookup: Lookup | None = field(default=None, init=False)
    _stamp: tuple[int, int] | None = field(default=None, init=False)
    _next_purge: float = field(default=0.0, init=False)
    _next_reload: float = field(default=0.0, init=False)
    last_frame_at: float | None = field(default=None, init=False)
    source_done: bool = field(default=False, init=False)

    # -- gallery -------------------------------------------------------------
    def reload_gallery(self, force: bool = False) -> None:
        stamp = self.gallery.stamp()
        if not force and self._lookup is not None and stamp == self._stamp:
            return
        data = self.gallery.load()
        model = self.recognizer.embedder.model_id if self.recognizer else None
        lookup = build_lookup(data, model)
        with self._lock:
            self._lookup, self._stamp = lookup, stamp
            if self.recognizer is not None:
                self.recognizer.set_gallery(lookup.view)
        self.metrics.gallery_templates.set(lookup.templates)
        self.metrics.gallery_residents.set(len(lookup.subjects))

    def on_subject_removed(self, pseudonym: str) -> None:
        """Called by the command handler after the gallery file changed."""
        self.reload_gallery(force=True)
        if self.recognizer is not None:
            self.recognizer.forget(pseudonym)

    @property
    def lookup(self) -> Lookup:
        if self._lookup is None:
            self.reload_gallery(force=True)
        assert self._lookup is not None
        return self._lookup

    # -- decisions -----------------------------------------------------------
    def record(self, outcomes: list[tuple[Outcome, float]]) -> list[GateEvent]:
        """Open the gate where granted, queue one event per outcome; returns the events."""
        if not outcomes:
            return []
        now_ms = int(self.clock() * 1000)
        with self._lock:
            lookup = self.lookup
            kept = [
                (o, t) for o, t in outcomes
                if o.subject is None
                or (o.subject in lookup.face_subjects if o.kind is EventKind.FACE_MATCH
                    else o.subject in lookup.subjects)
            ]
            makers = [event_maker(self.identity, self.purpose, o, now_ms) for o, _ in kept]
            try:
                events = self.outbox.append_many(makers) if makers else []
            except OutboxFull as exc:
                # Never silent: counted and logged. The gate still follows the decision.
                self.metrics.outbox_rejected.inc(len(makers))
                log.error("outbox full, %d event(s) not queued: %s", len(makers), exc)
                events = []
        done = time.monotonic()
        for outcome, first_seen in kept:
            if outcome.opens:
                self.actuator.open(outcome.kind.value)
            # Kind, decision, band and reason only: never the pseudonym or a credential.
            log.info(
                "decision: %s %s%s%s", outcome.kind.value, outcome.decision.value,
                f" band={outcome.score_band.value}" if outcome.score_band else "",
                f" reason={outcome.reason}" if outcome.reason else "",
            )
            self.metrics.decisions.labels(
                kind=outcome.kind.value, decision=outcome.decision.value
            ).inc()
            if outcome.kind in (EventKind.FACE_MATCH, EventKind.UNKNOWN_FACE):
                self.metrics.observe_stage("decision", done - first_seen)
        return events

    def process_frame(self, frame: Frame) -> list[GateEvent]:
        assert self.recognizer is not None
        self.lookup  # noqa: B018 - make sure the gallery is loaded before matching
        t0 = time.perf_counter()
        result = self.recognizer.process(frame.image)
        self.metrics.frames.labels(result="ok").inc()
        self.metrics.faces.inc(result.faces)
        events = self.record(result.outcomes)
        self.metrics.observe_stage("frame", time.perf_counter() - t0)
        self.last_frame_at = time.monotonic()
        return events

    def process_credentials(self) -> list[GateEvent]:
        creds = [c for source in self.credentials for c in source.poll()]
        if not creds:
            return []
        lookup = self.lookup
        now = time.monotonic()
        return self.record(
            [(resolve(c, self.hasher, lookup.cards, lookup.pins), now) for c in creds]
        )

    # -- housekeeping --------------------------------------------------------
    def housekeeping(self, connected: bool | None = None) -> None:
        now = time.monotonic()
        if now >= self._next_reload:
            self._next_reload = now + self.gallery_reload_s
            try:
                self.reload_gallery()
            except EdgeError as exc:
                log.error("gallery reload failed, keeping the previous one: %s", exc)
        if now >= self._next_purge:
            self._next_purge = now + self.purge_interval_s
            cutoff = int((self.clock() - self.outbox_max_age_s) * 1000)
            purged = self.outbox.purge_older_than(cutoff)
            if purged:
                self.metrics.outbox_purged.labels(reason="max_age").inc(purged)
                log.warning("purged %d queued events older than the maximum age", purged)
        self.metrics.outbox_depth.set(self.outbox.depth())
        self.metrics.outbox_unconfirmed.set(self.outbox.unconfirmed())
        oldest = self.outbox.oldest_ms()
        self.metrics.publish_lag.set(
            0.0 if oldest is None else max(0.0, self.clock() - oldest / 1000)
        )
        if connected is not None:
            self.metrics.mqtt_connected.set(1 if connected else 0)

    def health(self, max_frame_age_s: float) -> tuple[bool, dict[str, object]]:
        depth = self.outbox.depth()
        detail: dict[str, object] = {"outbox_depth": depth, "source_done": self.source_done}
        ok = depth < self.outbox.max_rows
        if self.source is not None and not self.source_done:
            age = None if self.last_frame_at is None else time.monotonic() - self.last_frame_at
            detail["last_frame_age_s"] = age
            ok = ok and age is not None and age < max_frame_age_s
        return ok, detail

    # -- main loop -----------------------------------------------------------
    def run(self, stop: threading.Event, connected: Callable[[], bool] = lambda: False) -> None:
        frames: Iterator[Frame] | None = self.source.frames() if self.source else None
        self.reload_gallery(force=True)
        next_house = 0.0
        while not stop.is_set():
            if frames is not None:
                frame = next(frames, None)
                if frame is None:
                    frames, self.source_done = None, True
                    log.info("video source ended")
                else:
                    self.process_frame(frame)
            else:
                stop.wait(0.02)
            self.process_credentials()
            if time.monotonic() >= next_house:
                next_house = time.monotonic() + 0.5
                self.housekeeping(connected())
