"""Threshold calibration from a user's own labelled faces (pure functions).

Genuine pairs are two photos of the same person, impostor pairs of two
different people. The suggested threshold keeps the impostor acceptance rate
at or below the target, and the report states what that costs in genuine
rejections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.vision.ports import Embedder, Embeddings, FaceDetector, Image


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int
    mean: float
    p01: float
    p05: float
    p50: float
    p95: float
    p99: float
    max: float
    min: float

    @classmethod
    def of(cls, scores: NDArray[np.float64]) -> Distribution:
        if len(scores) == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan, nan, nan)
        q = np.percentile(scores, [1, 5, 50, 95, 99])
        p01, p05, p50, p95, p99 = (float(v) for v in q)
        return cls(
            count=len(scores), mean=float(scores.mean()), p01=p01, p05=p05, p50=p50,
            p95=p95, p99=p99, max=float(scores.max()), min=float(scores.min()),
        )


@dataclass(frozen=True, slots=True)
class Calibration:
    genuine: Distribution
    impostor: Distribution
    threshold: float
    false_accept_rate: float
    false_reject_rate: float


def pair_scores(
    embeddings: NDArray[np.float32], labels: list[str]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cosine scores of every genuine and every impostor pair (upper triangle)."""
    sims = embeddings @ embeddings.T
    lab = np.asarray(labels)
    same = lab[:, None] == lab[None, :]
    upper = np.triu(np.ones_like(same, dtype=bool), k=1)
    return sims[same & upper].astype(np.float64), sims[~same & upper].astype(np.float64)


def suggest(
    genuine: NDArray[np.float64], impostor: NDArray[np.float64], target_far: float = 0.001,
    floor: float = 0.35,
) -> Calibration:
    """Lowest threshold whose impostor acceptance is ≤ ``target_far`` (never below ``floor``).

    With few impostor pairs the empirical rate is coarse, so the threshold is
    also kept above the highest impostor score seen, plus a small margin.
    """
    if len(impostor) and len(impostor) * target_far < 1:
        threshold = max(floor, float(impostor.max()) + 0.02)
    elif len(impostor):
        quantile = float(np.quantile(impostor, 1 - target_far, method="higher"))
        threshold = max(floor, quantile + 0.02)
    else:
        threshold = max(floor, 0.5)
    threshold = round(min(threshold, 0.95), 3)
    far = float((impostor >= threshold).mean()) if len(impostor) else float("nan")
    frr = float((genuine < threshold).mean()) if len(genuine) else float("nan")
    return Calibration(
        Distribution.of(genuine), Distribution.of(impostor), threshold, far, frr
    )


def largest_face_embedding(
    image: Image, detector: FaceDetector, embedder: Embedder
) -> Embeddings | None:
    """The embedding of the largest face, or None (for calibration folders)."""
    faces = detector.detect(np.asarray(image, dtype=np.uint8))
    if not faces:
        return None
    face = max(faces, key=lambda f: f.width)
    return embedder.embed(np.asarray(image, dtype=np.uint8), [face])
