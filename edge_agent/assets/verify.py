"""Verify a model by what it computes on a fixed input, never by its file hash.

The converted embedder is not byte-reproducible, but its outputs are. The
reference values below were recorded from the reference models (BlazeFace
ONNX from its npm package; MobileFaceNet converted from its TFLite file) and
are compared with a tolerance that absorbs CPU/kernel rounding differences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge_agent.errors import AssetError

#: Tolerance on each reference value: |got − want| ≤ ATOL + RTOL·|want|.
ATOL = 5e-5
RTOL = 2e-4


def fixed_pattern(shape: tuple[int, ...]) -> NDArray[np.float32]:
    """A smooth deterministic pattern in [-1, 1], independent of any RNG implementation."""
    n = int(np.prod(shape))
    x = np.arange(n, dtype=np.float64)
    return np.asarray(np.sin(x * 0.001) * np.cos(x * 0.0173 + 0.5), dtype=np.float32)


def detector_fingerprint(outputs: list[NDArray[np.float32]]) -> list[float]:
    """Compact numbers that change if any part of the detector computes differently."""
    logits_a, logits_b, reg_a, reg_b = outputs
    return [
        float(logits_a.max()), float(logits_b.max()),
        float(logits_a.mean()), float(logits_b.mean()),
        float(np.abs(reg_a).mean()), float(np.abs(reg_b).mean()),
        float(reg_a[0, 100, 0]), float(reg_b[0, 200, 3]),
    ]


def embedder_fingerprint(rows: NDArray[np.float32]) -> list[float]:
    return [float(v) for v in rows[0, :8]] + [float(rows[0] @ rows[1])]


DETECTOR_REFERENCE: list[float] = [
    -2.5800678730010986, -3.0430288314819336, -50.12879180908203, -10.753650665283203,
    8.284588813781738, 26.21272087097168, 0.7402269244194031, 104.44390106201172,
]
DETECTOR_FRONT_REFERENCE: list[float] = [
    -2.93524169921875, -2.6461658477783203, -4.270480155944824, -5.59927225112915,
    7.753767013549805, 19.708967208862305, -0.9137500524520874, 73.54254150390625,
]
EMBEDDER_REFERENCE: list[float] = [
    -0.0028074358124285936, 0.033782683312892914, 0.018074650317430496,
    0.004403139464557171, -0.06397509574890137, -0.033148929476737976,
    0.037935271859169006, -0.0002102513681165874, 0.9639297127723694,
]


def _compare(name: str, got: list[float], want: list[float]) -> None:
    if len(got) != len(want):
        raise AssetError(f"{name}: output fingerprint has {len(got)} values, want {len(want)}")
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if abs(g - w) > ATOL + RTOL * abs(w):
            raise AssetError(
                f"{name}: output {i} on the fixed input is {g:.6g}, the reference is {w:.6g}; "
                "the file is not the expected model"
            )


def verify_detector(path: Path, input_size: int = 256) -> list[float]:
    from edge_agent.vision.blazeface import BlazeFaceDetector, BlazeFaceParams

    detector = BlazeFaceDetector(path, BlazeFaceParams(input_size=input_size))
    tensor = fixed_pattern((1, input_size, input_size, 3)).reshape(1, input_size, input_size, 3)
    got = detector_fingerprint(detector.raw(tensor))
    reference = DETECTOR_REFERENCE if input_size == 256 else DETECTOR_FRONT_REFERENCE
    _compare(path.name, got, reference)
    return got


def verify_embedder(path: Path) -> list[float]:
    from edge_agent.vision.embedder import OnnxArcFaceEmbedder

    embedder = OnnxArcFaceEmbedder(path)
    size = embedder.params.input_size
    one = fixed_pattern((3, size, size)).reshape(3, size, size)
    tensor = np.stack([one, one[:, ::-1, :], one[:, :, ::-1]])
    rows = embedder.run(np.ascontiguousarray(tensor))
    # A dynamic batch must give each row the same result as a batch of one.
    single = embedder.run(np.ascontiguousarray(tensor[1:2]))
    if float(np.abs(single[0] - rows[1]).max()) > 1e-4:
        raise AssetError(f"{path.name}: batch of 3 and batch of 1 disagree")
    got = embedder_fingerprint(rows)
    _compare(path.name, got, EMBEDDER_REFERENCE)
    return got


def verify_same_outputs(source: Path, target: Path, feed: NDArray[np.float32]) -> float:
    """Check that a rewritten model computes what its source does; returns the largest error.

    Each output may differ by float rounding only: |a − b| ≤ ATOL + RTOL·max|a| per output.
    """
    from edge_agent.vision.onnx_session import open_session

    want_session, got_session = open_session(source), open_session(target)
    name = want_session.get_inputs()[0].name
    want = want_session.run(None, {name: feed})
    got = got_session.run(None, {got_session.get_inputs()[0].name: feed})
    worst = 0.0
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        w, g = np.asarray(w), np.asarray(g)
        if w.shape != g.shape:
            raise AssetError(f"{target.name}: output {i} has shape {g.shape}, want {w.shape}")
        error = float(np.abs(w - g).max())
        if error > ATOL + RTOL * float(np.abs(w).max()):
            raise AssetError(
                f"{target.name}: output {i} differs from {source.name} by {error:.3g}; "
                "delete it and re-run 'facegate edge models fetch'"
            )
        worst = max(worst, error)
    return worst
