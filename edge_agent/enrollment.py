"""Enrollment from photos: one face per photo, embedded on the device, never stored as an image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_agent.errors import EdgeError
from edge_agent.vision.ports import Embedder, Embeddings, FaceDetector, Image


class PhotoError(EdgeError):
    """A photo cannot be used for enrollment (unreadable, no face, several faces)."""


def embed_photos(
    photos: list[Path], detector: FaceDetector, embedder: Embedder, min_face_px: int = 40
) -> Embeddings:
    rows = []
    for path in photos:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise PhotoError(f"{path.name}: cannot decode the image")
        faces = [f for f in detector.detect(np.asarray(image, dtype=np.uint8))
                 if f.width >= min_face_px]
        if len(faces) != 1:
            raise PhotoError(
                f"{path.name}: found {len(faces)} faces of at least {min_face_px}px; "
                "an enrollment photo must show exactly one"
            )
        rows.append(embedder.embed(np.asarray(image, dtype=np.uint8), faces)[0])
    if not rows:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


def largest_face_embedding(
    image: Image, detector: FaceDetector, embedder: Embedder
) -> Embeddings | None:
    """The embedding of the largest face, or None (for calibration folders)."""
    faces = detector.detect(np.asarray(image, dtype=np.uint8))
    if not faces:
        return None
    face = max(faces, key=lambda f: f.width)
    return embedder.embed(np.asarray(image, dtype=np.uint8), [face])
