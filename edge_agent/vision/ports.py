"""The small interfaces a model plugs in through. Test doubles implement the same ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

#: A BGR uint8 image, as OpenCV decodes it.
Image = NDArray[np.uint8]
#: Rows of L2-normalised float32 embeddings.
Embeddings = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Detection:
    """One face in frame pixels: box (x1, y1, x2, y2), score, keypoints (K, 2).

    Keypoints follow the detector's order; the first four are eye (image
    left), eye (image right), nose tip, mouth centre.
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: NDArray[np.float32]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]


class FaceDetector(Protocol):
    """Finds faces in a BGR frame."""

    model_id: str

    def detect(self, frame: Image) -> list[Detection]: ...


class Embedder(Protocol):
    """Turns the faces of a frame into L2-normalised embeddings, one row per face."""

    model_id: str
    dim: int

    def embed(self, frame: Image, faces: list[Detection]) -> Embeddings: ...
