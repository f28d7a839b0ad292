"""Video in over RTSP: the agent's OpenCV source reads a real RTSP stream."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.video.sources import OpenCvSource
from stream_processor.runtime.system import ensure_debian_files

pytestmark = pytest.mark.component

SERVER = Path(__file__).with_name("rtsp_server.py")
_LIB = "/usr/lib/x86_64-linux-gnu"
#: What the GStreamer RTSP server needs, by a file each Debian package installs.
PACKAGES = {
    f"{_LIB}/girepository-1.0/GstRtspServer-1.0.typelib": "gir1.2-gst-rtsp-server-1.0",
    f"{_LIB}/gstreamer-1.0/libgstjpeg.so": "gstreamer1.0-plugins-good",
    f"{_LIB}/gstreamer-1.0/libgstvideotestsrc.so": "gstreamer1.0-plugins-base",
    "/usr/lib/python3/dist-packages/gi/__init__.py": "python3-gi",
}


class RtspServer:
    def __init__(self) -> None:
        ensure_debian_files(PACKAGES)  # installed if missing (as the stack does), never skipped
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"rtsp://127.0.0.1:{self.port}/gate"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(SERVER), str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def server() -> Iterator[RtspServer]:
    srv = RtspServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def rtsp_url(server: RtspServer) -> str:
    return server.url


def test_frames_come_from_a_real_rtsp_stream(rtsp_url: str) -> None:
    failures: list[int] = []
    source = OpenCvSource(rtsp_url, on_decode_error=lambda: failures.append(1))
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 20:
            break
    assert [f.image.shape for f in frames] == [(240, 320, 3)] * 20
    assert [f.index for f in frames] == list(range(20))
    # the pattern moves: the stream is live, not one frame repeated
    assert any((a.image != b.image).any() for a, b in zip(frames, frames[1:], strict=False))
    assert failures == []


def test_a_lost_stream_is_counted_and_reopened(server: RtspServer) -> None:
    failures: list[float] = []
    source = OpenCvSource(
        server.url, reopen_backoff_s=0.2, max_consecutive_failures=3, network_timeout_s=2.0,
        on_decode_error=lambda: failures.append(time.monotonic()),
    )  # fmt: skip
    restart = threading.Timer(1.0, server.start)
    frames = 0
    started = time.monotonic()
    try:
        for _ in source.frames():
            frames += 1
            if frames == 10:  # the server goes away mid-stream and comes back after 1 s
                server.kill()
                restart.start()
            if frames == 70 or time.monotonic() - started > 60:
                break
    finally:
        restart.cancel()
    assert frames == 70, "frames did not resume after the RTSP server came back"
    assert failures, "the outage was not counted"
    assert time.monotonic() - started < 60
