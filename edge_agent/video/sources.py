"""Frame sources. A frame that fails to decode is counted and skipped, never fatal.

- :class:`ImageFolderSource` replays a folder of images at a chosen rate (tests, demo).
- :class:`OpenCvSource` reads a camera index, an RTSP/HTTP URL or a video file;
  a live source that drops is reopened with back-off, a file ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge_agent.vision.ports import Image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image
    index: int
    #: time.monotonic() when the frame was read
    t: float


class FrameSource(Protocol):
    def frames(self) -> Iterator[Frame]: ...


def _noop() -> None:
    return None


@dataclass
class ImageFolderSource:
    """Images of a folder in name order, ``fps`` per second (0 = as fast as possible)."""

    folder: Path
    fps: float = 10.0
    loop: bool = False
    on_decode_error: Callable[[], None] = _noop
    sleep: Callable[[float], None] = time.sleep

    def frames(self) -> Iterator[Frame]:
        files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            log.warning("no images in %s", self.folder)
            return
        index = 0
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        due = time.monotonic()
        while True:
            for path in files:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    self.on_decode_error()
                    log.warning("frame %d did not decode; skipped", index)
                    index += 1
                    continue
                if period:
                    due += period
                    wait = due - time.monotonic()
                    if wait > 0:
                        self.sleep(wait)
                yield Frame(np.asarray(image, dtype=np.uint8), index, time.monotonic())
                index += 1
            if not self.loop:
                return


@dataclass
class OpenCvSource:
    """``uri``: a camera index ("0"), an rtsp:// or http:// URL, or a video file path."""

    uri: str
    live: bool = True
    max_consecutive_failures: int = 25
    reopen_backoff_s: float = 1.0
    #: A network stream that stops sending fails a read after this long (without
    #: it FFmpeg's read blocked for minutes when an RTSP server went away).
    network_timeout_s: float = 5.0
    on_decode_error: Callable[[], None] = _noop
    sleep: Callable[[float], None] = time.sleep

    def _open(self) -> cv2.VideoCapture:
        if self.uri.isdigit():
            return cv2.VideoCapture(int(self.uri))
        if "://" in self.uri:
            ms = int(self.network_timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            return cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, params)
        return cv2.VideoCapture(self.uri)

    def frames(self) -> Iterator[Frame]:
        cap = self._open()
        index = failures = 0
        backoff = self.reopen_backoff_s
        try:
            while True:
                ok, image = cap.read() if cap.isOpened() else (False, None)
                if ok and image is not None:
                    failures = 0
                    backoff = self.reopen_backoff_s
                    yield Frame(np.asarray(image, dtype=np.uint8), index, time.monotonic())
                    index += 1
                    continue
                if not self.live and cap.isOpened() and failures == 0:
                    # A file that stops giving frames has ended, unless it keeps failing.
                    pos = cap.get(cv2.CAP_PROP_POS_FRAMES)
                    total = cap.get(cv2.CAP_PROP_FRAME_COUNT)
                    if total <= 0 or pos >= total:
                        return
                self.on_decode_error()
                failures += 1
                index += 1
                if failures >= self.max_consecutive_failures:
                    if not self.live:
                        log.error("video file stopped decoding after frame %d", index)
                        return
                    log.warning("video source lost; reopening in %.1fs", backoff)
                    cap.release()
                    self.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    cap = self._open()
                    failures = 0
        finally:
            cap.release()
