"""The capture variations of the demo's replayed photos: bounded, shape-preserving, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.video.augment import (
    GAMMA_RANGE,
    MAX_ANGLE_DEG,
    MAX_BLUR_SIGMA,
    MAX_BRIGHTNESS,
    MAX_SHEAR,
    SCALE_RANGE,
    Variation,
    apply,
    draw,
    variations,
)

pytestmark = pytest.mark.unit

variation = st.builds(
    Variation,
    angle_deg=st.floats(-MAX_ANGLE_DEG, MAX_ANGLE_DEG),
    shear=st.floats(-MAX_SHEAR, MAX_SHEAR),
    scale=st.floats(*SCALE_RANGE),
    gamma=st.floats(*GAMMA_RANGE),
    brightness=st.floats(-MAX_BRIGHTNESS, MAX_BRIGHTNESS),
    blur_sigma=st.floats(0.0, MAX_BLUR_SIGMA),
    mirror=st.booleans(),
)


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@settings(max_examples=60, deadline=None)
@given(v=variation, h=st.integers(8, 96), w=st.integers(8, 96), seed=st.integers(0, 2**16))
def test_any_variation_keeps_shape_and_dtype(v: Variation, h: int, w: int, seed: int) -> None:
    image = _photo(h, w, seed)
    out = apply(image, v)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out.flags.c_contiguous
    assert image.shape == (h, w, 3)  # the input is not changed in place


@settings(max_examples=40, deadline=None)
@given(gamma=st.floats(*GAMMA_RANGE), brightness=st.floats(-MAX_BRIGHTNESS, MAX_BRIGHTNESS))
def test_light_moves_a_flat_grey_by_a_bounded_amount(gamma: float, brightness: float) -> None:
    grey = np.full((16, 16, 3), 128, dtype=np.uint8)
    out = apply(grey, Variation(gamma=gamma, brightness=brightness))
    expected = (128 / 255) ** gamma * 255 + brightness
    assert np.all(np.abs(out.astype(float) - np.clip(expected, 0, 255)) <= 1.0)
    assert len(np.unique(out)) == 1  # light changes levels, not structure


def test_the_neutral_variation_is_the_photo_itself() -> None:
    image = _photo(40, 30, 1)
    assert np.array_equal(apply(image, Variation()), image)
    assert np.array_equal(apply(image, Variation(mirror=True)), image[:, ::-1, :])


def test_scale_below_one_shrinks_a_centred_square() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[30:70, 30:70] = 255
    far = apply(image, Variation(scale=0.7))
    assert 0.4 < (far[..., 0] > 127).sum() / (image[..., 0] > 127).sum() < 0.6


def test_blur_softens_edges() -> None:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, 16:] = 255
    soft = apply(image, Variation(blur_sigma=MAX_BLUR_SIGMA))
    assert 0 < soft[16, 15, 0] < 255 and 0 < soft[16, 16, 0] < 255


@given(field=st.sampled_from(["angle_deg", "shear", "scale", "gamma", "brightness", "blur_sigma"]))
def test_out_of_bounds_parameters_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Variation(**{field: 99.0})  # type: ignore[arg-type]


def test_draws_are_bounded_and_reproducible() -> None:
    rng = np.random.default_rng(7)
    drawn = [draw(rng) for _ in range(200)]  # each one passed the bounds check
    assert len({d.angle_deg for d in drawn}) == 200
    image = _photo(24, 24, 3)
    first = [out for _, out in variations(image, 5, seed=11)]
    again = [out for _, out in variations(image, 5, seed=11)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert np.array_equal(first[0], image)
    assert not np.array_equal(first[1], image)
