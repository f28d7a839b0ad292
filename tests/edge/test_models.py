"""The real models on the real photos (fetched at set-up from registry packages)."""

from __future__ import annotations

import itertools
import shutil

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge_agent.assets.verify import verify_detector, verify_embedder
from edge_agent.errors import AssetError, ModelError
from edge_agent.gallery.enroll import embed_photos
from edge_agent.vision.embedder import OnnxArcFaceEmbedder

pytestmark = pytest.mark.component

THRESHOLD = 0.5  # the default recognition.threshold
OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg")


def test_each_model_is_verified_by_its_output_on_a_fixed_input(assets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    verify_detector(assets.detector)
    verify_embedder(assets.embedder)
    # A model whose weights differ by a little is refused, whatever its file name.
    model = onnx.load(str(assets.embedder))
    init = max(model.graph.initializer, key=lambda i: int(np.prod(i.dims)))
    weights = numpy_helper.to_array(init).copy()
    weights.flat[: weights.size // 10] *= 1.2
    init.CopyFrom(numpy_helper.from_array(weights, init.name))
    tampered = tmp_path / "mobilefacenet.onnx"
    onnx.save(model, str(tampered))
    with pytest.raises(AssetError, match="not the expected model"):
        verify_embedder(tampered)


def test_embedder_has_a_dynamic_batch_and_fixed_batch_models_are_refused(  # type: ignore[no-untyped-def]
    assets, embedder, tmp_path
) -> None:
    crops = [np.full((112, 112, 3), v, dtype=np.uint8) for v in (30, 120, 200)]
    batch = embedder.embed_crops(crops)
    one = embedder.embed_crops(crops[1:2])
    assert batch.shape == (3, 192)
    assert np.allclose(batch[1], one[0], atol=1e-5)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    model = onnx.load(str(assets.embedder))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    fixed = tmp_path / "fixed.onnx"
    onnx.save(model, str(fixed))
    with pytest.raises(ModelError, match="batch dimension is fixed"):
        OnnxArcFaceEmbedder(fixed)


def test_three_photos_of_one_person_match_and_another_person_does_not(  # type: ignore[no-untyped-def]
    assets, detector, embedder
) -> None:
    names = [*OBAMA, "biden.jpg"]
    emb = dict(zip(names, embed_photos([assets.photo(n) for n in names], detector, embedder),
                   strict=True))
    genuine = [float(emb[a] @ emb[b]) for a, b in itertools.combinations(OBAMA, 2)]
    impostor = [float(emb[a] @ emb["biden.jpg"]) for a in OBAMA]
    print(f"\ngenuine {np.round(genuine, 3)}  impostor {np.round(impostor, 3)}")
    assert min(genuine) > THRESHOLD + 0.15
    assert max(impostor) < THRESHOLD - 0.15


def test_detector_finds_the_face_and_its_keypoints_in_a_gate_frame(assets, detector) -> None:  # type: ignore[no-untyped-def]
    image = cv2.imread(str(assets.photo("obama.jpg")))
    frame = np.zeros((720, 1280, 3), dtype=np.uint8)
    small = cv2.resize(image, (455, 568))
    frame[100:668, 700:1155] = small
    faces = detector.detect(frame)
    assert len(faces) == 1
    (x1, y1, x2, y2), kp = faces[0].box, faces[0].keypoints
    assert 700 < x1 < x2 < 1155 and 100 < y1 < y2 < 668
    assert kp[0, 0] < kp[1, 0]  # eyes left to right
    assert kp[0, 1] < kp[2, 1] < kp[3, 1]  # eye above nose above mouth
    assert detector.detect(np.zeros((480, 640, 3), dtype=np.uint8)) == []


def test_fetch_is_idempotent_and_verifies_what_is_cached(assets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edge_agent.assets.fetch import fetch_all

    cache = tmp_path / "cache"
    cache.mkdir()
    for p in assets.detector.parent.glob("*.onnx"):  # as fetched, converted and optimised
        shutil.copy(p, cache / p.name)
    paths = fetch_all(cache, photos=False)  # nothing to fetch: only verification runs
    assert paths["detector"].read_bytes() == assets.detector.read_bytes()
    assert paths["embedder"].read_bytes() == assets.embedder.read_bytes()
    (cache / paths["detector_source"].name).write_bytes(assets.embedder.read_bytes())
    with pytest.raises(ModelError):
        fetch_all(cache, photos=False)


def test_optimised_models_compute_what_their_sources_do_and_are_remade_when_missing(  # type: ignore[no-untyped-def]
    assets, tmp_path
) -> None:
    import onnx

    from edge_agent.assets.fetch import fetch_all

    cache = tmp_path / "cache"
    cache.mkdir()
    sources = {"blazeface_back_256.onnx", "blazeface_front_128.onnx", "mobilefacenet.onnx"}
    for name in sources:
        shutil.copy(assets.detector.parent / name, cache / name)
    paths = fetch_all(cache, photos=False)  # rewrites and verifies, fetches nothing
    for key in ("detector", "detector_front", "embedder"):
        assert paths[key].name not in sources and paths[key].exists()
        assert paths[f"{key}_source"].name in sources
    ops = {n.op_type for n in onnx.load(str(paths["embedder"])).graph.node}
    assert "Abs" not in ops and "Sub" not in ops  # PReLU as depthwise convolutions
    ops = {n.op_type for n in onnx.load(str(paths["detector"])).graph.node}
    assert "ConstantOfShape" not in ops and "Concat" not in ops  # zero-pad as a 1×1 conv
    # A rewritten file that computes something else is refused, not silently used.
    model = onnx.load(str(paths["embedder"]))
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and "prelu_keep" in n.name)
    init = next(i for i in model.graph.initializer if i.name == conv.input[1])
    weights = numpy_helper.to_array(init) * 0.5
    init.CopyFrom(numpy_helper.from_array(weights, init.name))
    onnx.save(model, str(paths["embedder"]))
    with pytest.raises(AssetError):
        fetch_all(cache, photos=False)


def test_the_front_128_detector_plugs_in_through_config_and_still_recognises(  # type: ignore[no-untyped-def]
    assets, embedder
) -> None:
    from edge_agent.vision.blazeface import BlazeFaceDetector, BlazeFaceParams

    front = BlazeFaceDetector(
        assets.detector.with_name("blazeface_front_128.onnx"), BlazeFaceParams(input_size=128),
        model_id="blazeface-front128",
    )
    names = [*OBAMA, "biden.jpg"]
    emb = embed_photos([assets.photo(n) for n in names], front, embedder)
    scores = emb @ emb.T
    assert min(scores[0, 1], scores[0, 2], scores[1, 2]) > THRESHOLD + 0.15
    assert max(scores[3, :3]) < THRESHOLD - 0.15


def test_free_size_detector_skips_the_padding_and_finds_what_the_square_finds(  # type: ignore[no-untyped-def]
    assets, detector
) -> None:
    from edge_agent.vision.blazeface import BlazeFaceDetector, BlazeFaceParams

    square_model = BlazeFaceDetector(assets.detector.with_name("blazeface_back_256.onnx"))
    padded = BlazeFaceDetector(assets.detector, BlazeFaceParams(square=True))
    assert detector.input_shape(480, 640) == (192, 256)
    assert detector.input_shape(720, 1280) == (160, 256)
    assert detector.input_shape(1200, 626) == (256, 160)
    assert square_model.input_shape(480, 640) == padded.input_shape(480, 640) == (256, 256)
    image = cv2.imread(str(assets.photo("obama.jpg")))
    frame = np.zeros((720, 1280, 3), dtype=np.uint8)
    frame[100:600, 300:700] = cv2.resize(image, (400, 500))
    want = square_model.detect(frame)
    assert len(want) == 1
    for got, tolerance in ((detector.detect(frame), 1.0), (padded.detect(frame), 1e-2)):
        assert len(got) == 1
        assert float(np.abs(got[0].keypoints - want[0].keypoints).max()) < tolerance
        assert abs(got[0].score - want[0].score) < 0.01
