"""Varied captures of a real photo stay recognisable: the demo's replay exercises the real
detector and embedder without turning a resident into a stranger (or into someone else)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.gallery.enroll import embed_photos
from edge_agent.video.augment import variations

pytestmark = pytest.mark.component  # the real models, as tests/edge/test_models.py

CAPTURES = 10


def test_varied_captures_match_the_right_resident(assets, detector, embedder) -> None:  # type: ignore[no-untyped-def]
    anna = embed_photos([assets.photo("obama.jpg"), assets.photo("obama2.jpg")], detector, embedder)
    ben = embed_photos([assets.photo("biden.jpg")], detector, embedder)
    photo = np.asarray(cv2.imread(str(assets.photo("obama3.jpg"))), dtype=np.uint8)
    found, right = 0, 0
    for _, capture in variations(photo, CAPTURES, seed=17):
        faces = detector.detect(capture)
        if not faces:
            continue
        found += 1
        probe = embedder.embed(capture, [max(faces, key=lambda f: f.width)])[0]
        score = float(np.max(anna @ probe))
        # Above the gate's default threshold (0.5), and nearer Anna than Ben.
        if score >= 0.5 and score > float(np.max(ben @ probe)):
            right += 1
    assert found >= CAPTURES - 2, f"only {found} of {CAPTURES} captures had a face"
    assert right == found, f"{found - right} captures matched the wrong resident"
