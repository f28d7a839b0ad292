"""Per-frame recognition: detect, track, embed the undecided faces, match, decide once.

A track is decided on its first frame whose best match passes the threshold
(granted), or after ``unknown_after_frames`` frames that did not (unknown
face, denied). Decided tracks are only followed, never embedded again, so a
person standing at the gate costs one detection per frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_agent.decision import Outcome, Subject, face_granted, face_unknown
from edge_agent.vision.match import Bands, TemplateIndex
from edge_agent.vision.ports import Embedder, FaceDetector, Image
from edge_agent.vision.track import IouTracker, Track


@dataclass(frozen=True, slots=True)
class RecognitionPolicy:
    threshold: float = 0.5
    high_band: float = 0.65
    unknown_after_frames: int = 3
    min_face_px: int = 40
    cooldown_s: float = 10.0


@dataclass(frozen=True, slots=True)
class GalleryView:
    """What matching needs from the gallery: the index and who owns each row."""

    index: TemplateIndex
    subjects: tuple[Subject, ...]


@dataclass
class FrameResult:
    faces: int
    #: (outcome, monotonic time the deciding track was first seen)
    outcomes: list[tuple[Outcome, float]] = field(default_factory=list)


def _noop(stage: str, seconds: float) -> None:
    return None


class Recognizer:
    def __init__(
        self,
        detector: FaceDetector,
        embedder: Embedder,
        policy: RecognitionPolicy,
        tracker: IouTracker | None = None,
        *,
        observe: Callable[[str, float], None] = _noop,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.policy = policy
        self.tracker = tracker or IouTracker()
        self.bands = Bands(policy.threshold, policy.high_band)
        self.model_id = f"{detector.model_id}+{embedder.model_id}"
        self._observe = observe
        self._clock = clock
        self._gallery = GalleryView(TemplateIndex.empty(embedder.dim), ())
        self._recent: dict[str, float] = {}

    def set_gallery(self, view: GalleryView) -> None:
        self._gallery = view
        known = {s.pseudonym for s in view.subjects}
        self._recent = {k: v for k, v in self._recent.items() if k in known}

    def forget(self, pseudonym: str) -> None:
        self._recent.pop(pseudonym, None)

    def process(self, frame: Image) -> FrameResult:
        now = self._clock()
        t0 = time.perf_counter()
        faces = self.detector.detect(frame)
        t1 = time.perf_counter()
        self._observe("detect", t1 - t0)
        seen = self.tracker.update(faces, now)
        self._observe("track", time.perf_counter() - t1)
        todo: list[Track] = [
            t for t in seen
            if not t.decided and t.detection is not None
            and t.detection.width >= self.policy.min_face_px
        ]
        result = FrameResult(faces=len(faces))
        if not todo:
            return result
        t2 = time.perf_counter()
        vectors = self.embedder.embed(frame, [t.detection for t in todo if t.detection])
        t3 = time.perf_counter()
        self._observe("embed", t3 - t2)
        matches = self._gallery.index.search(vectors, self.policy.threshold)
        self._observe("match", time.perf_counter() - t3)
        for track, match in zip(todo, matches, strict=True):
            track.best_score = max(track.best_score, match.score)
            outcome = self._decide(track, match.owner, match.score, now)
            if outcome is not None:
                result.outcomes.append((outcome, track.first_seen))
        return result

    def _decide(self, track: Track, owner: int | None, score: float, now: float) -> Outcome | None:
        if owner is not None:
            track.decided = True
            subject = self._gallery.subjects[owner]
            last = self._recent.get(subject.pseudonym)
            self._recent[subject.pseudonym] = now
            if last is not None and now - last < self.policy.cooldown_s:
                return None  # the same approach, re-acquired after a tracking gap
            return face_granted(
                subject.pseudonym, subject.consent_ref, self.bands.band(score), self.model_id
            )
        track.misses_below_threshold += 1
        if track.misses_below_threshold >= self.policy.unknown_after_frames:
            track.decided = True
            return face_unknown(self.bands.band(track.best_score), self.model_id)
        return None
