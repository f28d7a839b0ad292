"""Photometric and geometric variations of one photo, so one person yields many captures.

A gate sees a resident at a slight head tilt, under changing light, a little out of
focus and at varying distance; the demo replays a few registry photos through the
real agent, so each replayed frame is one photo changed along those axes. Pure
functions of (image, parameters); the random draw is separate and seeded, so a
replay is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.vision.ports import Image

#: Bounds of each axis: small enough that the face stays detectable and recognisable.
MAX_ANGLE_DEG = 12.0
MAX_SHEAR = 0.08
SCALE_RANGE = (0.7, 1.15)
GAMMA_RANGE = (0.6, 1.6)
MAX_BRIGHTNESS = 40.0
MAX_BLUR_SIGMA = 2.0


@dataclass(frozen=True, slots=True)
class Variation:
    """One capture's deviation from the photo."""

    angle_deg: float = 0.0  # in-plane head tilt, about the image centre
    shear: float = 0.0  # horizontal shear: a slight yaw seen by a fixed camera
    scale: float = 1.0  # < 1: the person stands further away (the canvas keeps its size)
    gamma: float = 1.0  # > 1 darkens mid-tones, < 1 brightens them
    brightness: float = 0.0  # additive offset in grey levels
    blur_sigma: float = 0.0  # Gaussian defocus / motion softness, 0 = sharp
    mirror: bool = False

    def __post_init__(self) -> None:
        checks = (
            ("angle_deg", abs(self.angle_deg) <= MAX_ANGLE_DEG),
            ("shear", abs(self.shear) <= MAX_SHEAR),
            ("scale", SCALE_RANGE[0] <= self.scale <= SCALE_RANGE[1]),
            ("gamma", GAMMA_RANGE[0] <= self.gamma <= GAMMA_RANGE[1]),
            ("brightness", abs(self.brightness) <= MAX_BRIGHTNESS),
            ("blur_sigma", 0.0 <= self.blur_sigma <= MAX_BLUR_SIGMA),
        )
        bad = [name for name, ok in checks if not ok]
        if bad:
            raise ValueError(f"variation out of bounds: {', '.join(bad)}")


def draw(rng: np.random.Generator) -> Variation:
    """A random variation inside the bounds (the caller owns the seed)."""
    return Variation(
        angle_deg=float(rng.uniform(-MAX_ANGLE_DEG, MAX_ANGLE_DEG)),
        shear=float(rng.uniform(-MAX_SHEAR, MAX_SHEAR)),
        scale=float(rng.uniform(*SCALE_RANGE)),
        gamma=float(rng.uniform(*GAMMA_RANGE)),
        brightness=float(rng.uniform(-MAX_BRIGHTNESS, MAX_BRIGHTNESS)),
        blur_sigma=float(rng.uniform(0.0, MAX_BLUR_SIGMA)),
        mirror=bool(rng.random() < 0.5),
    )


def _geometry(image: Image, v: Variation) -> Image:
    h, w = image.shape[:2]
    centre = (w / 2.0, h / 2.0)
    m = cv2.getRotationMatrix2D(centre, v.angle_deg, v.scale)
    # Shear about the centre, composed after rotation/scale.
    m[0, 1] += v.shear * v.scale
    m[0, 2] -= v.shear * centre[1] * v.scale
    out = cv2.warpAffine(
        image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(cv2.flip(out, 1) if v.mirror else out, dtype=np.uint8)


def _light(image: Image, v: Variation) -> Image:
    lut = (np.arange(256, dtype=np.float64) / 255.0) ** v.gamma * 255.0 + v.brightness
    table = np.clip(np.rint(lut), 0, 255).astype(np.uint8)
    return np.asarray(cv2.LUT(image, table), dtype=np.uint8)


def apply(image: Image, v: Variation) -> Image:
    """``image`` (H×W×3 uint8) as captured under ``v``: same shape and dtype."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("expected an H×W×3 uint8 image")
    out = _light(_geometry(image, v), v)
    if v.blur_sigma > 0:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), sigmaX=v.blur_sigma), dtype=np.uint8)
    return np.ascontiguousarray(out, dtype=np.uint8)


def variations(image: Image, n: int, seed: int) -> Iterator[tuple[Variation, Image]]:
    """``n`` reproducible captures of one photo (the first is the photo itself)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        v = Variation() if i == 0 else draw(rng)
        yield v, apply(image, v)
