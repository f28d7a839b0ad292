"""Test doubles that implement the same Protocols as the real models."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_agent.vision.ports import Detection, Embeddings, Image


def face_at(x: float, y: float, size: float = 120.0) -> Detection:
    kp = np.array(
        [[x + size * 0.3, y + size * 0.4], [x + size * 0.7, y + size * 0.4],
         [x + size * 0.5, y + size * 0.6], [x + size * 0.5, y + size * 0.8],
         [x, y + size * 0.5], [x + size, y + size * 0.5]], dtype=np.float32,
    )
    return Detection((x, y, x + size, y + size), 0.9, kp)


@dataclass
class ScriptedDetector:
    """Returns the next scripted list of faces on each call."""

    script: list[list[Detection]]
    model_id: str = "fake-det"
    calls: int = 0

    def detect(self, frame: Image) -> list[Detection]:
        faces = self.script[self.calls] if self.calls < len(self.script) else []
        self.calls += 1
        return faces


@dataclass
class FixedEmbedder:
    """Embeds every face as the given vector (per x position bucket)."""

    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    default: np.ndarray | None = None
    model_id: str = "fake-emb"
    dim: int = 4
    calls: int = 0

    def embed(self, frame: Image, faces: list[Detection]) -> Embeddings:
        self.calls += 1
        rows = []
        for f in faces:
            v = self.vectors.get(int(f.box[0]) // 100, self.default)
            assert v is not None
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32).reshape(len(faces), self.dim)
