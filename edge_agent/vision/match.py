"""1:N cosine matching against the gallery's templates, and the coarse score band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.wire import ScoreBand


@dataclass(frozen=True, slots=True)
class Match:
    """Best template for one face: its owner's index (or None) and the cosine score."""

    owner: int | None
    score: float


@dataclass(frozen=True, slots=True)
class Bands:
    """Score bands: below ``threshold`` low; below ``high`` medium; else high."""

    threshold: float
    high: float

    def band(self, score: float) -> ScoreBand:
        if score < self.threshold:
            return ScoreBand.LOW
        return ScoreBand.MEDIUM if score < self.high else ScoreBand.HIGH


class TemplateIndex:
    """Templates as one contiguous (M, D) float32 matrix: a query is one mat-vec.

    ``owners[i]`` is the index of the record that template ``i`` belongs to.
    """

    def __init__(self, templates: NDArray[np.float32], owners: NDArray[np.int64]) -> None:
        if templates.ndim != 2 or len(templates) != len(owners):
            raise ValueError("templates must be (M, D) with one owner per row")
        self.templates = np.ascontiguousarray(templates, dtype=np.float32)
        self.owners = owners

    @classmethod
    def empty(cls, dim: int) -> TemplateIndex:
        return cls(np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.templates)

    def search(self, queries: NDArray[np.float32], threshold: float) -> list[Match]:
        """Top-1 per query; ``owner`` is None when the best score is below ``threshold``."""
        if len(queries) == 0:
            return []
        if len(self.templates) == 0:
            return [Match(None, 0.0) for _ in range(len(queries))]
        scores = self.templates @ queries.T  # (M, Q)
        best = np.argmax(scores, axis=0)
        out = []
        for q, i in enumerate(best):
            score = float(scores[i, q])
            out.append(Match(int(self.owners[i]) if score >= threshold else None, score))
        return out
