"""The device CLI as an installer uses it: models, key, enroll, calibrate, remove; video files."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from edge_agent.pseudonym import load_site_secret, pseudonym
from edge_agent.video.sources import OpenCvSource
from tests.support.edge import cli, write_config

pytestmark = pytest.mark.e2e


def test_calibrate_suggests_a_threshold_from_a_labelled_folder(assets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "labelled"
    for person, names in (("a", ("obama.jpg", "obama2.jpg", "obama3.jpg")), ("b", ("biden.jpg",))):
        (folder / person).mkdir(parents=True)
        for name in names:
            shutil.copy(assets.photo(name), folder / person / name)
    # a second photo of b: mirrored and darker (the augmentation advice)
    img = cv2.imread(str(assets.photo("biden.jpg")))
    cv2.imwrite(str(folder / "b" / "biden-mirror.jpg"), (cv2.flip(img, 1) * 0.7).astype(np.uint8))
    (folder / "b" / "notes.txt").write_text("ignored")
    config = write_config(tmp_path, assets, tmp_path / "device.json")
    out = cli("edge", "calibrate", "--config", str(config), str(folder)).stdout
    assert "5 faces of 2 people" in out
    assert "genuine   pairs=     4" in out and "impostor  pairs=     6" in out
    threshold = float(out.split("suggested threshold: ")[1].split()[0])
    assert 0.35 <= threshold < 0.75
    assert "false accepts 0.0000" in out


def test_enroll_list_remove_by_resident_and_minor_rules(assets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, assets, tmp_path / "device.json")
    photo = str(assets.photo("obama.jpg"))
    minor = cli("edge", "enroll", "--config", str(config), "--resident-id", "kid-1", "--photo",
                photo, "--consent-ref", "C-9", "--birth-date", "2020-01-01", check=False)
    assert minor.returncode != 0 and "guardian" in minor.stderr
    cli("edge", "enroll", "--config", str(config), "--resident-id", "kid-1", "--photo", photo,
        "--consent-ref", "C-9", "--birth-date", "2020-01-01", "--guardian-consent-ref", "G-3")
    cli("edge", "enroll", "--config", str(config), "--resident-id", "card-1", "--card", "C-77",
        "--adult", env={"FACEGATE_EDGE_ENROLL_PIN": "123456"})
    group = cli("edge", "enroll", "--config", str(config), "--resident-id", "x", "--adult",
                "--photo", str(tmp_path / "gallery.key"), "--consent-ref", "C", check=False)
    assert group.returncode != 0 and "decode" in group.stderr
    listing = cli("edge", "gallery", "list", "--config", str(config)).stdout
    secret = load_site_secret(tmp_path / "site.secret")
    kid, card = pseudonym(secret, "kid-1"), pseudonym(secret, "card-1")
    assert kid in listing and card in listing
    assert "kid-1" not in listing and "C-77" not in listing and "123456" not in listing
    assert "2 residents, 1 templates" in listing
    out = cli("edge", "gallery", "remove", "--config", str(config), "--resident-id", "kid-1").stdout
    assert "1 templates removed, record removed" in out and "kid-1" not in out
    listing = cli("edge", "gallery", "list", "--config", str(config)).stdout
    assert kid not in listing and "1 residents, 0 templates" in listing
    wrong = cli("edge", "gallery", "list", "--config", str(config), check=False,
                env={"FACEGATE_EDGE_GALLERY_KEY": "A" * 43 + "="})
    assert wrong.returncode != 0 and "wrong gallery key" in wrong.stderr


def test_video_file_source_reads_frames_and_ends(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(12):
        writer.write(np.full((48, 64, 3), i * 10, dtype=np.uint8))
    writer.release()
    frames = list(OpenCvSource(str(path), live=False).frames())
    assert len(frames) == 12 and frames[0].image.shape == (48, 64, 3)
    errors = []
    missing = OpenCvSource(str(tmp_path / "none.avi"), live=False, max_consecutive_failures=3,
                           on_decode_error=lambda: errors.append(1))
    assert list(missing.frames()) == [] and len(errors) == 3
