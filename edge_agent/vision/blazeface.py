"""BlazeFace (MediaPipe, back-camera 256×256 variant) under ONNX Runtime.

Input ``[1, S, S, 3]`` NHWC RGB scaled by (x − mean) / std (default [-1, 1]);
the frame is letterboxed to a square (padded bottom/right) so that boxes map
back with one scale. Outputs two logit heads and two regressor heads over 896
anchors (16×16 cells × 2, then 8×8 cells × 6); each regressor row is
[dx, dy, w, h, 6 × (kx, ky)] in input pixels.

A model whose height and width are symbolic (the set-up rewrite
:func:`edge_agent.assets.optimize.rewrite_free_size`) gets the frame scaled the
same way but padded only to a multiple of the coarsest stride (S/8), not to a
square: 256×192 instead of 256×256 for a 4:3 frame, a quarter less work. The
anchors are the square's rows and columns that the smaller input covers. Faces
away from the bottom/right edge are found as in the square (keypoints within
~0.1 px); near that edge the missing black padding moves keypoints by up to a
few pixels (embedding cosine ≥ 0.97 between the two in the test scenes).
``square=True`` (config ``detector.letterbox: square``) keeps the full square.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from edge_agent.errors import ModelError
from edge_agent.vision.onnx_session import open_session
from edge_agent.vision.ports import Detection, Image


@dataclass(frozen=True, slots=True)
class BlazeFaceParams:
    input_size: int = 256
    mean: float = 127.5
    std: float = 127.5
    score_threshold: float = 0.6
    nms_iou: float = 0.3
    min_face_px: int = 0
    max_faces: int = 16
    #: Pad to the full S×S square even when the model takes any size (see the module doc).
    square: bool = False


def anchors(
    input_size: int = 256, height: int | None = None, width: int | None = None
) -> NDArray[np.float32]:
    """Anchor centres (N, 2) in units of ``input_size``, in the order of the model's two heads.

    Both BlazeFace variants have 16×16 cells × 2 anchors, then 8×8 cells × 6 over
    a square input (strides S/16 and S/8); an input of ``height``×``width`` (a
    multiple of S/8) covers the first rows and columns of those grids.
    """
    height = input_size if height is None else height
    width = input_size if width is None else width
    rows: list[NDArray[np.float32]] = []
    for cells, per_cell in ((16, 2), (8, 6)):
        stride = input_size / cells
        ys = (np.arange(round(height / stride), dtype=np.float32) + 0.5) / cells
        xs = (np.arange(round(width / stride), dtype=np.float32) + 0.5) / cells
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        centres = np.stack([xx.ravel(), yy.ravel()], axis=1)
        rows.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(rows).astype(np.float32)


def _iou_one(box: NDArray[np.float32], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9), dtype=np.float32)


def weighted_nms(
    scores: NDArray[np.float32], boxes: NDArray[np.float32], points: NDArray[np.float32],
    iou: float, limit: int,
) -> list[tuple[float, NDArray[np.float32], NDArray[np.float32]]]:
    """MediaPipe's blending NMS: overlapping candidates are averaged by score."""
    order = np.argsort(-scores)
    scores, boxes, points = scores[order], boxes[order], points[order]
    alive = np.ones(len(scores), dtype=bool)
    out: list[tuple[float, NDArray[np.float32], NDArray[np.float32]]] = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (_iou_one(boxes[i], boxes) >= iou)
        group[i] = True
        w = scores[group][:, None]
        out.append(
            (
                float(scores[i]),
                (boxes[group] * w).sum(0) / w.sum(),
                (points[group] * w[:, :, None]).sum(0) / w.sum(),
            )
        )
        alive &= ~group
        if len(out) >= limit:
            break
    return out


def shrink(image: Image, width: int, height: int) -> Image:
    """Resize to ``width``×``height``, anti-aliased when shrinking, cheaply.

    One INTER_AREA resize by a non-integer factor (640×480 → 256×192) costs
    ~1.9 ms of one core; halving with INTER_AREA (a 2×2 box filter, OpenCV's
    fast path) while the factor left is at least 2, then one INTER_LINEAR step
    by less than 2, costs ~0.25 ms; the pixels differ by under half a grey level
    on average (a few tens at sharp edges), detections by about a pixel.
    """
    h, w = image.shape[:2]
    while w % 2 == 0 and h % 2 == 0 and w >= 2 * width and h >= 2 * height:
        w, h = w // 2, h // 2
        image = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), np.uint8)
    if (w, h) == (width, height):
        return image
    slow = w >= 2 * width or h >= 2 * height  # odd sizes: no halving, plain INTER_AREA
    return np.asarray(
        cv2.resize(
            image, (width, height), interpolation=cv2.INTER_AREA if slow else cv2.INTER_LINEAR
        ),
        np.uint8,
    )


class BlazeFaceDetector:
    """:class:`~edge_agent.vision.ports.FaceDetector` for the BlazeFace ONNX model."""

    #: Sessions kept for distinct input shapes of a free-size model (one camera: one).
    MAX_SHAPES = 4

    def __init__(
        self, path: Path, params: BlazeFaceParams | None = None, *, threads: int = 1,
        model_id: str = "blazeface-back256",
    ) -> None:
        self.params = params or BlazeFaceParams()
        self.model_id = model_id
        self._path, self._threads = path, threads
        session = open_session(path, threads)
        inputs = session.get_inputs()
        size = self.params.input_size
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        free = len(shape) == 4 and shape[3] == 3 and all(isinstance(d, str) for d in shape[1:3])
        if not free and shape[1:] != [size, size, 3]:
            raise ModelError(f"{path.name}: input {shape} is not [1,S,S,3] or [1,H,W,3]")
        #: Symbolic names of height and width, when the model takes any multiple of S/8.
        self._free: tuple[str, str] | None = (shape[1], shape[2]) if free else None
        self._input = inputs[0].name
        names = [o.name for o in session.get_outputs()]
        if len(names) != 4:
            raise ModelError(f"{path.name}: expected 4 outputs, got {names}")
        self._outputs = names
        self._sessions = {} if free else {(size, size): session}
        self._anchors = {(size, size): anchors(size)}

    def input_shape(self, frame_height: int, frame_width: int) -> tuple[int, int]:
        """The (height, width) the model is run at for a frame of this size."""
        size = self.params.input_size
        if self._free is None or self.params.square:
            return size, size
        side = max(frame_height, frame_width)
        step = size // 8
        h = max(1, round(frame_height * size / side))
        w = max(1, round(frame_width * size / side))
        return -(-h // step) * step, -(-w // step) * step

    def preprocess(self, frame: Image) -> tuple[NDArray[np.float32], float]:
        """Letterbox (pad bottom/right), resize, RGB, normalise; returns (tensor, side px)."""
        h, w = frame.shape[:2]
        side = max(h, w)
        scale = self.params.input_size / side
        resized = shrink(frame, max(1, round(w * scale)), max(1, round(h * scale)))
        canvas = np.zeros((*self.input_shape(h, w), 3), dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
        tensor = (rgb.astype(np.float32) - self.params.mean) / self.params.std
        return tensor[None], float(side)

    def _session_for(self, height: int, width: int) -> ort.InferenceSession:
        session = self._sessions.get((height, width))
        if session is None:
            if self._free is None:
                size = self.params.input_size
                raise ModelError(f"input {height}×{width}: this model takes only {size}×{size}")
            if len(self._sessions) >= self.MAX_SHAPES:
                self._sessions.pop(next(iter(self._sessions)))
            dims = {self._free[0]: height, self._free[1]: width}
            session = open_session(self._path, self._threads, dims)
            self._sessions[(height, width)] = session
        return session

    def raw(self, tensor: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        """The model's four outputs for a preprocessed tensor (used by verification)."""
        session = self._session_for(tensor.shape[1], tensor.shape[2])
        return [np.asarray(o) for o in session.run(self._outputs, {self._input: tensor})]

    def _anchors_for(self, height: int, width: int) -> NDArray[np.float32]:
        found = self._anchors.get((height, width))
        if found is None:
            found = anchors(self.params.input_size, height, width)
            if len(self._anchors) >= self.MAX_SHAPES:
                self._anchors.pop(next(iter(self._anchors)))
            self._anchors[(height, width)] = found
        return found

    def detect(self, frame: Image) -> list[Detection]:
        tensor, side = self.preprocess(frame)
        logits_a, logits_b, reg_a, reg_b = self.raw(tensor)
        anchor_rows = self._anchors_for(tensor.shape[1], tensor.shape[2])
        logits = np.concatenate([logits_a[0, :, 0], logits_b[0, :, 0]])
        regs = np.concatenate([reg_a[0], reg_b[0]])
        p = self.params
        # sigmoid(x) >= t  <=>  x >= logit(t): filter before the exp.
        keep = logits >= np.log(p.score_threshold / (1 - p.score_threshold))
        if not keep.any():
            return []
        scores = (1 / (1 + np.exp(-np.clip(logits[keep], -80, 80)))).astype(np.float32)
        regs, anc = regs[keep] / p.input_size, anchor_rows[keep]
        centre = anc + regs[:, 0:2]
        half = regs[:, 2:4] / 2
        boxes = (np.concatenate([centre - half, centre + half], axis=1) * side).astype(np.float32)
        points = ((anc[:, None, :] + regs[:, 4:16].reshape(-1, 6, 2)) * side).astype(np.float32)
        faces = []
        h, w = frame.shape[:2]
        for score, box, pts in weighted_nms(scores, boxes, points, p.nms_iou, p.max_faces):
            x1, y1 = max(0.0, float(box[0])), max(0.0, float(box[1]))
            x2, y2 = min(float(w), float(box[2])), min(float(h), float(box[3]))
            if x2 - x1 < max(p.min_face_px, 1) or y2 - y1 < 1:
                continue
            faces.append(Detection((x1, y1, x2, y2), score, pts.astype(np.float32)))
        return faces
