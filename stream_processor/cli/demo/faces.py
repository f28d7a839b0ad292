"""Single faces cut from a registry group photo, so one photo gives several identities.

The project's own detector finds the faces; each is cropped with a margin (hair, chin,
background: what a gate camera frames) and written next to the demo's other photos.
Faces are numbered left to right, so a name stays the same on every run.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_agent.vision.ports import FaceDetector, Image
from stream_processor.cli.demo.procs import DemoStepError

#: The registry group photo (insightface's t1.jpg) the cast's extra faces come from.
GROUP_PHOTO = "t1.jpg"
#: Margin around the detector's box, as a fraction of the box: the crop stays a portrait
#: the gate's detector finds again at every augmented scale.
MARGIN = 0.8


def crop_faces(image: Image, detector: FaceDetector, margin: float = MARGIN) -> list[Image]:
    """Every face the detector finds in ``image``, cropped with ``margin``, left to right."""
    height, width = image.shape[:2]
    crops = []
    for face in sorted(detector.detect(image), key=lambda f: f.box[0]):
        x1, y1, x2, y2 = face.box
        dx, dy = margin * (x2 - x1), margin * (y2 - y1)
        left, top = max(0, int(x1 - dx)), max(0, int(y1 - dy))
        right, bottom = min(width, int(x2 + dx)), min(height, int(y2 + dy))
        crops.append(np.ascontiguousarray(image[top:bottom, left:right]))
    return crops


def face_name(index: int) -> str:
    """The file name of the group photo's ``index``-th face (1-based, left to right)."""
    return f"{Path(GROUP_PHOTO).stem}-face{index}.png"


def write_group_faces(photos: Path, detector: FaceDetector, out: Path, needed: int) -> list[Path]:
    """Crop the group photo's faces into ``out``; an error if fewer than ``needed``."""
    image = cv2.imread(str(photos / GROUP_PHOTO), cv2.IMREAD_COLOR)
    if image is None:
        raise DemoStepError(f"{photos / GROUP_PHOTO}: missing; run 'facegate edge models fetch'")
    crops = crop_faces(np.asarray(image, dtype=np.uint8), detector)
    if len(crops) < needed:
        raise DemoStepError(f"{GROUP_PHOTO}: the detector found {len(crops)} faces, the cast "
                            f"needs {needed}")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, crop in enumerate(crops, start=1):
        path = out / face_name(i)
        if not cv2.imwrite(str(path), crop):
            raise DemoStepError(f"{path}: cannot write the face crop")
        paths.append(path)
    return paths


def photo_path(photos: Path, faces: Path, name: str) -> Path:
    """Where a cast photo is: a cropped face in ``faces``, else a fetched photo."""
    return faces / name if (faces / name).is_file() else photos / name
