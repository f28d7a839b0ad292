"""BlazeFace (MediaPipe, back-camera 256×256 variant) under ONNX Runtime.

Input ``[1, S, S, 3]`` NHWC RGB scaled by (x − mean) / std (default [-1, 1]);
the frame is letterboxed to a square (padded bottom/right) so that boxes map
back with one scale. Outputs two logit heads and two regressor heads over 896
anchors (16×16 cells × 2, then 8×8 cells × 6); each regressor row is
[dx, dy, w, h, 6 × (kx, ky)] in input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
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


def anchors() -> NDArray[np.float32]:
    """Anchor centres (896, 2) in [0, 1], in the order of the model's two heads.

    Both BlazeFace variants have 16×16 cells × 2 anchors, then 8×8 cells × 6
    (strides 16/32 for the 256 back model, 8/16 for the 128 front model).
    """
    rows: list[NDArray[np.float32]] = []
    for cells, per_cell in ((16, 2), (8, 6)):
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
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

    def __init__(
        self, path: Path, params: BlazeFaceParams | None = None, *, threads: int = 1,
        model_id: str = "blazeface-back256",
    ) -> None:
        self.params = params or BlazeFaceParams()
        self.model_id = model_id
        self._session = open_session(path, threads)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape)[1:] != [
            self.params.input_size, self.params.input_size, 3,
        ]:
            raise ModelError(f"{path.name}: input {inputs[0].shape} is not [1,S,S,3]")
        self._input = inputs[0].name
        names = [o.name for o in self._session.get_outputs()]
        if len(names) != 4:
            raise ModelError(f"{path.name}: expected 4 outputs, got {names}")
        self._outputs = names
        self._anchors = anchors()

    def preprocess(self, frame: Image) -> tuple[NDArray[np.float32], float]:
        """Letterbox to a square, resize, RGB, normalise; returns (tensor, side px)."""
        h, w = frame.shape[:2]
        side = max(h, w)
        size = self.params.input_size
        scale = size / side
        resized = shrink(frame, max(1, round(w * scale)), max(1, round(h * scale)))
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
        tensor = (rgb.astype(np.float32) - self.params.mean) / self.params.std
        return tensor[None], float(side)

    def raw(self, tensor: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        """The model's four outputs for a preprocessed tensor (used by verification)."""
        return [np.asarray(o) for o in self._session.run(self._outputs, {self._input: tensor})]

    def detect(self, frame: Image) -> list[Detection]:
        tensor, side = self.preprocess(frame)
        logits_a, logits_b, reg_a, reg_b = self.raw(tensor)
        logits = np.concatenate([logits_a[0, :, 0], logits_b[0, :, 0]])
        regs = np.concatenate([reg_a[0], reg_b[0]])
        p = self.params
        # sigmoid(x) >= t  <=>  x >= logit(t): filter before the exp.
        keep = logits >= np.log(p.score_threshold / (1 - p.score_threshold))
        if not keep.any():
            return []
        scores = (1 / (1 + np.exp(-np.clip(logits[keep], -80, 80)))).astype(np.float32)
        regs, anc = regs[keep] / p.input_size, self._anchors[keep]
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
