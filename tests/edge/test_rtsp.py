"""Video in over RTSP: the agent's OpenCV source reads a real RTSP stream."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.video.sources import OpenCvSource
from stream_processor.stack.system import ensure_debian_files

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


@pytest.fixture
def rtsp_url() -> Iterator[str]:
    ensure_debian_files(PACKAGES)  # installed if missing (as the stack does), never skipped
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["/usr/bin/python3", str(SERVER), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield f"rtsp://127.0.0.1:{port}/gate"
    finally:
        proc.kill()
        proc.wait(10)


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
