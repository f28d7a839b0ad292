"""Tracking faces across frames so that one approach to the gate yields one decision.

A greedy IoU tracker: cheap, deterministic, enough for a gate lane where faces
move little between frames. A track is decided once; afterwards it is only
followed (no more embeddings) until it leaves the view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.vision.ports import Detection

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: Box
    first_seen: float
    frames: int = 1
    missed: int = 0
    decided: bool = False
    misses_below_threshold: int = 0
    best_score: float = 0.0
    detection: Detection | None = None


@dataclass
class IouTracker:
    """Associates detections with tracks by IoU; forgets a track after ``max_missed`` frames."""

    min_iou: float = 0.3
    max_missed: int = 5
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 0

    def update(self, detections: list[Detection], now: float) -> list[Track]:
        """Tracks seen in this frame (each with its ``detection`` set), new ones included."""
        pairs = sorted(
            (
                (iou(t.box, d.box), ti, di)
                for ti, t in enumerate(self.tracks)
                for di, d in enumerate(detections)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_d: set[int] = set()
        for overlap, ti, di in pairs:
            if overlap < self.min_iou:
                break
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            track = self.tracks[ti]
            track.box, track.detection = detections[di].box, detections[di]
            track.frames += 1
            track.missed = 0
        for ti, track in enumerate(self.tracks):
            if ti not in used_t:
                track.missed += 1
                track.detection = None
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for di, det in enumerate(detections):
            if di not in used_d:
                self.tracks.append(Track(self._next_id, det.box, now, detection=det))
                self._next_id += 1
        return [t for t in self.tracks if t.detection is not None]
