"""The demo's property firm: its sites and gates, and the people who use them.

Two gates of the first site run the real edge agent (detector, embedder, gallery,
card reader) on replayed registry photos and faces cut from a group photo, each
varied per capture (:mod:`edge_agent.video.augment`); the other sites' gates are
synthetic. The cast is fictional; the real photos stand in for residents and visitors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from edge_agent.video.augment import variations
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.cli.demo.faces import face_name, photo_path
from stream_processor.cli.demo.procs import DemoStepError

TENANT = "demo"
FIRM = "Harbour Homes (tenant 'demo')"
REAL_SITE = "riverside"
REAL_GATES = ("lobby", "garage")
SYNTHETIC_SITES = (("hilltop", ("gate-1", "gate-2")), ("old-town", ("gate-1", "gate-2")))
#: Captures of each photo a real gate replays (one reproducible variation each).
CAPTURES_PER_PHOTO = 6
#: Frames a face may be lost before its track ends (the gate config's max_missed_frames).
TRACK_MAX_MISSED = 1
#: Faceless frames between two photos: the lane is empty, so the gate's tracker ends the
#: last person's track. Without the gap, two similar crops in a row continue one track
#: (IoU), and the second person is never decided.
EMPTY_LANE_FRAMES = TRACK_MAX_MISSED + 1


@dataclass(frozen=True, slots=True)
class Resident:
    resident_id: str  # the office's id; hashed with the site secret, never sent
    role: str  # what the story shows about them
    enrol_photos: tuple[str, ...]  # photos the office enrols (empty: no face)
    replay_photos: tuple[str, ...]  # photos the gates' cameras replay
    minor: bool = False
    card: str | None = None  # a key-card number read at the gate (hashed on the gate)
    pin: str | None = None


#: Riverside's people. Anna later withdraws and asks for erasure; Ben swaps his face for a
#: card; Carla uses a card and a PIN only; Dev is a minor whose guardian consents; Eli and
#: Fay use their faces. Faces enrolled from one photo are replayed only as varied
#: captures of it (:func:`replay_folder`), never as the enrolled capture itself.
CAST = (
    Resident("R-101", "resident, face consent (withdraws, then asks for erasure)",
             ("obama.jpg", "obama2.jpg"), ("obama3.jpg", "obama.jpg")),
    Resident("R-102", "resident, face consent (asks for a key card instead)",
             ("biden.jpg",), ("biden.jpg",)),
    Resident("R-103", "resident, card and PIN only (never enrolled by face)", (), (),
             card="0042", pin="4711"),
    Resident("R-104", "minor: face enrolled with a guardian's consent",
             (face_name(3),), (face_name(3),), minor=True),
    Resident("R-105", "resident, face consent", (face_name(1),), (face_name(1),)),
    Resident("R-106", "resident, face consent", (face_name(2),), (face_name(2),)),
)  # fmt: skip
#: Visitors nobody enrolled, each an unknown face: two faces of the group photo, and a
#: passer-by whose 112-pixel photo is too small to recognise reliably once varied.
VISITOR_PHOTOS = (face_name(4), face_name(5), "Tom_Hanks_54745.png")
#: Faces the demo cuts from the group photo (:mod:`stream_processor.cli.demo.faces`).
GROUP_FACES = 5
#: The card Ben is handed when his key-card request is fulfilled.
KEYCARD_NUMBER = "0099"


def real_gates() -> list[DeviceIdentity]:
    return [DeviceIdentity(TENANT, REAL_SITE, g, "cam-1") for g in REAL_GATES]


def synthetic_gates() -> list[DeviceIdentity]:
    return [DeviceIdentity(TENANT, s, g, "cam-1") for s, gates in SYNTHETIC_SITES for g in gates]


def replay_folder(photos: Path, faces: Path, names: list[str], out: Path, seed: int) -> int:
    """Write the captures a real gate's camera replays: each photo varied for pose, light,
    blur and scale, with an empty lane between photos; returns how many frames. An enrolled
    photo is replayed only varied: the gate must recognise other captures than the one the
    office enrolled."""
    enrolled = {p for r in CAST for p in r.enrol_photos}
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, name in enumerate(names):
        path = photo_path(photos, faces, name)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DemoStepError(f"{path}: missing; run 'facegate edge models fetch'")
        photo = np.asarray(image, dtype=np.uint8)
        for _ in range(EMPTY_LANE_FRAMES if i else 0):
            cv2.imwrite(str(out / f"{n:04d}-empty.jpg"), np.full((240, 320, 3), 128, np.uint8))
            n += 1
        for j, (_, frame) in enumerate(variations(photo, CAPTURES_PER_PHOTO, seed + i)):
            if j == 0 and name in enrolled:
                continue
            cv2.imwrite(str(out / f"{n:04d}-{Path(name).stem}-{j}.jpg"), frame)
            n += 1
    return n


@dataclass(frozen=True, slots=True)
class GateFiles:
    config: Path  # the agent's YAML
    credentials: Path  # the card reader / PIN pad (a line file the story appends to)
    http_port: int  # /metrics and /healthz of the agent


def write_gate_config(
    root: Path, device_config: Path, models: dict[str, Path], replay: Path, http_port: int,
    site_secret: Path, gallery_key: Path,
) -> GateFiles:  # fmt: skip
    """A gate's agent config, as in deploy/edge/edge-agent.example.yaml, on the demo's files."""
    root.mkdir(parents=True, exist_ok=True)
    credentials = root / "credentials.txt"
    credentials.touch()
    doc = {
        "device_config": str(device_config),
        "site_secret": str(site_secret),
        "purpose": "access_control",
        "video": {"kind": "folder", "uri": str(replay), "fps": 2, "loop": True},
        "detector": {"path": str(models["detector"])},
        "embedder": {"path": str(models["embedder"])},
        "recognition": {
            "threshold": 0.5,
            "high_band": 0.65,
            "cooldown_s": 5,
            "max_missed_frames": TRACK_MAX_MISSED,
        },
        "gallery": {"path": str(root / "gallery.fgg"), "key_file": str(gallery_key)},
        "access": {"kind": "line_file", "path": str(credentials)},
        "outbox": {"path": str(root / "outbox.sqlite")},
        "http": {"enabled": True, "host": "127.0.0.1", "port": http_port},
    }
    config = root / "edge.yaml"
    config.write_text(yaml.safe_dump(doc))
    return GateFiles(config, credentials, http_port)
