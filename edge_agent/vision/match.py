"""1:N cosine matching against the gallery's templates, and the coarse score band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.errors import InvalidInput
from edge_agent.vision.int8_scan import Int8Scan
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


#: From this many templates on, search first scans an int8 copy (4× less memory
#: to read: the float32 mat-vec is memory-bound) and re-scores the best
#: ``RESCORE`` candidates exactly in float32.
QUANTIZE_FROM = 20_000
RESCORE = 32


class TemplateIndex:
    """Templates as one contiguous (M, D) float32 matrix: a query is one mat-vec.

    ``owners[i]`` is the index of the record that template ``i`` belongs to.
    Large galleries (``quantize_from``) are scanned in int8 first, then the
    best candidates are re-scored exactly.
    """

    def __init__(
        self, templates: NDArray[np.float32], owners: NDArray[np.int64],
        quantize_from: int = QUANTIZE_FROM,
    ) -> None:
        if templates.ndim != 2 or len(templates) != len(owners):
            raise InvalidInput("templates must be (M, D) with one owner per row")
        self.templates = np.ascontiguousarray(templates, dtype=np.float32)
        self.owners = owners
        self._scan = Int8Scan(self.templates) if len(templates) >= quantize_from else None

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
        if self._scan is not None:
            return self._search_quantized(queries, threshold)
        scores = self.templates @ queries.T  # (M, Q)
        best = np.argmax(scores, axis=0)
        out = []
        for q, i in enumerate(best):
            score = float(scores[i, q])
            out.append(Match(int(self.owners[i]) if score >= threshold else None, score))
        return out

    def _search_quantized(self, queries: NDArray[np.float32], threshold: float) -> list[Match]:
        assert self._scan is not None
        approx = self._scan.scores(queries)  # (Q, M)
        k = min(RESCORE, approx.shape[1])
        out = []
        for q, row in enumerate(approx):
            candidates = np.argpartition(row, -k)[-k:]
            exact = self.templates[candidates] @ queries[q]
            best = int(np.argmax(exact))
            score, i = float(exact[best]), int(candidates[best])
            out.append(Match(int(self.owners[i]) if score >= threshold else None, score))
        return out
