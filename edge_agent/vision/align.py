"""Alignment of a face to an embedder's template (similarity transform from 4 points)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

#: ArcFace 112×112 template: eye (image left), eye (image right), nose tip, mouth centre.
ARCFACE_112 = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [56.14, 92.28]], dtype=np.float32
)


def similarity_transform(
    points: NDArray[np.float32], template: NDArray[np.float32]
) -> NDArray[np.float64] | None:
    """The 2×3 rotation+scale+shift that best maps ``points`` onto ``template``."""
    matrix, _ = cv2.estimateAffinePartial2D(points, template)
    if matrix is None:
        return None
    return np.asarray(matrix, dtype=np.float64)


def align(
    frame: NDArray[np.uint8],
    keypoints: NDArray[np.float32],
    size: int = 112,
    template: NDArray[np.float32] = ARCFACE_112,
) -> NDArray[np.uint8]:
    """The ``size``×``size`` aligned crop (same channel order as ``frame``)."""
    scaled = template * (size / 112.0)
    matrix = similarity_transform(keypoints[: len(template)].astype(np.float32), scaled)
    if matrix is None:
        # Degenerate points: fall back to a plain resize of the keypoints' bounding box.
        x1, y1 = keypoints.min(axis=0)
        x2, y2 = keypoints.max(axis=0)
        pad = max(x2 - x1, y2 - y1)
        crop = frame[
            max(int(y1 - pad), 0) : int(y2 + pad), max(int(x1 - pad), 0) : int(x2 + pad)
        ]
        if crop.size == 0:
            crop = frame
        return np.asarray(cv2.resize(crop, (size, size)), dtype=np.uint8)
    out = cv2.warpAffine(frame, matrix, (size, size), borderValue=(0, 0, 0))
    return np.asarray(out, dtype=np.uint8)
