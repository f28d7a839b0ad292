"""ArcFace-style embedders (MobileFaceNet by default) under ONNX Runtime.

Each face is aligned to the embedder's template, converted to the configured
channel order and normalised by (x − mean) / std, batched NCHW; the output is
L2-normalised so that a dot product is the cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.errors import ModelError
from edge_agent.vision.align import ARCFACE_112, align
from edge_agent.vision.onnx_session import open_session
from edge_agent.vision.ports import Detection, Embeddings, Image


@dataclass(frozen=True, slots=True)
class EmbedderParams:
    input_size: int = 112
    mean: float = 127.5
    std: float = 128.0
    rgb: bool = True


def l2_normalise(rows: NDArray[np.float32]) -> Embeddings:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


class OnnxArcFaceEmbedder:
    """:class:`~edge_agent.vision.ports.Embedder` for NCHW [N,3,S,S] → [N,D] models."""

    def __init__(
        self, path: Path, params: EmbedderParams | None = None, *, threads: int = 1,
        model_id: str = "mobilefacenet-192",
    ) -> None:
        self.params = params or EmbedderParams()
        self.model_id = model_id
        self._session = open_session(path, threads)
        inp = self._session.get_inputs()
        out = self._session.get_outputs()
        if len(inp) != 1 or len(out) != 1:
            raise ModelError(f"{path.name}: expected one input and one output")
        shape = list(inp[0].shape)
        size = self.params.input_size
        if shape[1:] != [3, size, size]:
            raise ModelError(f"{path.name}: input {shape} is not [N,3,{size},{size}]")
        if isinstance(shape[0], int):
            raise ModelError(
                f"{path.name}: batch dimension is fixed at {shape[0]}; "
                "re-run 'facegate edge models fetch' to convert with a dynamic batch"
            )
        dim = out[0].shape[1]
        if not isinstance(dim, int):
            raise ModelError(f"{path.name}: embedding dimension is not fixed")
        self.dim = dim
        self._input = inp[0].name

    def crops(self, frame: Image, faces: list[Detection]) -> list[NDArray[np.uint8]]:
        size = self.params.input_size
        return [align(frame, f.keypoints, size, ARCFACE_112) for f in faces]

    def embed_crops(self, crops: list[NDArray[np.uint8]]) -> Embeddings:
        """Embeddings of already aligned BGR crops."""
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack(
            [cv2.cvtColor(c, cv2.COLOR_BGR2RGB) if self.params.rgb else c for c in crops]
        ).astype(np.float32)
        batch = (batch - self.params.mean) / self.params.std
        return self.run(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))

    def run(self, tensor: NDArray[np.float32]) -> Embeddings:
        """The normalised output for a preprocessed NCHW tensor (used by verification)."""
        out = self._session.run(None, {self._input: tensor})[0]
        return l2_normalise(np.asarray(out, dtype=np.float32))

    def embed(self, frame: Image, faces: list[Detection]) -> Embeddings:
        return self.embed_crops(self.crops(frame, faces))
