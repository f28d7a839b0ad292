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


def _probes(photo: np.ndarray, detector, embedder, seed: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Embeddings of the varied captures of ``photo``, never the unvaried one (enrolled)."""
    found = []
    for i, (_, capture) in enumerate(variations(photo, CAPTURES + 1, seed)):
        faces = detector.detect(capture)
        if i > 0 and faces:
            found.append(embedder.embed(capture, [max(faces, key=lambda f: f.width)])[0])
    return found


def test_the_demo_cast_genuine_above_impostor_below_threshold(  # type: ignore[no-untyped-def]
    assets, detector, embedder, tmp_path
) -> None:
    """Every face resident of the demo (group-photo crops included) is recognised from
    captures other than the enrolled one, and is never taken for another resident; the
    two visitors match nobody."""
    from stream_processor.cli.demo.faces import photo_path, write_group_faces
    from stream_processor.cli.demo.firm import CAST, GROUP_FACES, VISITOR_PHOTOS

    cut = write_group_faces(assets.photos, detector, tmp_path, GROUP_FACES)
    assert len(cut) >= GROUP_FACES
    faced = [r for r in CAST if r.enrol_photos]
    assert len(faced) >= 5 and any(r.minor for r in faced)
    gallery = {
        r.resident_id: embed_photos(
            [photo_path(assets.photos, tmp_path, p) for p in r.enrol_photos], detector, embedder
        )
        for r in faced
    }
    people: list[tuple[str | None, str]] = [
        (r.resident_id, p) for r in faced for p in r.replay_photos
    ]
    people += [(None, p) for p in VISITOR_PHOTOS]
    for n, (who, name) in enumerate(people):
        image = cv2.imread(str(photo_path(assets.photos, tmp_path, name)))
        photo = np.asarray(image, dtype=np.uint8)
        probes = _probes(photo, detector, embedder, seed=31 + n)
        assert len(probes) >= CAPTURES - 2, f"{name}: only {len(probes)} captures had a face"
        for rid, templates in gallery.items():
            scores = [float(np.max(templates @ p)) for p in probes]
            if rid == who:  # genuine: every capture above the gate's default threshold
                assert min(scores) >= 0.5, (name, rid, scores)
            else:  # impostor (another resident, or a visitor): below it
                assert max(scores) < 0.5, (name, rid, scores)
