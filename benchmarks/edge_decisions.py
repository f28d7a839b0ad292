"""The edge benchmark's decision phase (see ``edge_bench.py``; not run on its own):
first frame with a new face → event committed in the outbox, with the agent's
models, the front-128 detector and the models as fetched; frames/s with tracking.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.agent import EdgeAgent
from edge_agent.decision import event_maker, face_granted
from edge_agent.video.sources import Frame
from edge_agent.vision.blazeface import BlazeFaceDetector, BlazeFaceParams
from edge_agent.vision.embedder import OnnxArcFaceEmbedder
from edge_agent.wire import ScoreBand

#: Frames decided before timing starts (ONNX Runtime's first runs are slower).
WARMUP = 5
STAGES = ("detect", "embed", "match", "track", "frame")


@dataclass(frozen=True)
class Decisions:
    wall: list[float]  # seconds per decision
    cpu: list[float]  # CPU seconds of the deciding thread
    front: list[float]  # with the front-128 detector
    source: list[float]  # with the models as fetched (no set-up rewrites)
    source_cpu: list[float]
    stages: dict[str, float]  # mean ms per stage
    appends: list[float]  # outbox append (SQLite, synchronous=FULL)
    fps: float  # frames/s with tracking, one person in view
    fps_cpu: float
    made: int  # events made during the frames/s run


def measure(
    runs: int,
    threads: int,
    fps_frames: int,
    paths: dict[str, Path],
    det: BlazeFaceDetector,
    emb: OnnxArcFaceEmbedder,
    make_agent: Callable[[Path, Any, Any, np.ndarray], EdgeAgent],
    gate_frame: np.ndarray,
) -> Decisions:
    """``gate_frame``: a 640×480 frame with one face that is not the enrolled photo's."""
    photo = cv2.imread(str(paths["photos"] / "obama.jpg"))
    enrolled = emb.embed(photo, det.detect(photo))[0]
    with tempfile.TemporaryDirectory() as tmp:
        agent = make_agent(Path(tmp), det, emb, enrolled)
        agent.reload_gallery(force=True)
        wall, cpu = timed(agent, gate_frame, runs, expect_one_match=True)
        stages = stage_means(agent)
        appends = outbox_appends(agent)
        front128 = BlazeFaceDetector(paths["detector_front"], BlazeFaceParams(input_size=128),
                                     threads=threads, model_id="blazeface-front128")  # fmt: skip
        with swapped(agent, detector=front128):
            front, _ = timed(agent, gate_frame, runs)
        fetched = (BlazeFaceDetector(paths["detector_source"], threads=threads),
                   OnnxArcFaceEmbedder(paths["embedder_source"], threads=threads))  # fmt: skip
        with swapped(agent, detector=fetched[0], embedder=fetched[1]):
            source, source_cpu = timed(agent, gate_frame, runs)
        fps, fps_cpu, made = tracking_rate(agent, gate_frame, fps_frames)
        agent.outbox.close()
    return Decisions(wall, cpu, front, source, source_cpu, stages, appends, fps, fps_cpu, made)


def timed(
    agent: EdgeAgent, frame: np.ndarray, runs: int, expect_one_match: bool = False
) -> tuple[list[float], list[float]]:
    """(wall, thread CPU) seconds of each decision on a fresh tracker."""
    wall, cpu = [], []
    assert agent.recognizer is not None
    for i in range(runs + WARMUP):
        agent.recognizer.tracker.tracks.clear()
        t0, c0 = time.perf_counter(), time.thread_time()
        events = agent.process_frame(Frame(frame, i, time.monotonic()))
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        if expect_one_match:
            assert len(events) == 1 and events[0].kind.value == "face_match", events
        if i >= WARMUP and events:
            wall.append(dt)
            cpu.append(dc)
    return wall, cpu


def stage_means(agent: EdgeAgent) -> dict[str, float]:
    reg = agent.metrics.registry
    out = {}
    for stage in STAGES:
        total = reg.get_sample_value("facegate_edge_stage_seconds_sum", {"stage": stage})
        count = reg.get_sample_value("facegate_edge_stage_seconds_count", {"stage": stage})
        out[stage] = (total or 0.0) / max(count or 1.0, 1.0) * 1e3
    return out


def outbox_appends(agent: EdgeAgent, n: int = 50) -> list[float]:
    outcome = face_granted("ps1_" + "e" * 32, "C-1", ScoreBand.HIGH, "bench")
    times = []
    for _ in range(n):
        t1 = time.perf_counter()
        agent.outbox.append_many(
            [event_maker(agent.identity, "access_control", outcome, int(time.time() * 1000))]
        )
        times.append(time.perf_counter() - t1)
    return times


@contextmanager
def swapped(agent: EdgeAgent, detector: Any = None, embedder: Any = None) -> Iterator[None]:
    """The agent's recognizer with another detector and/or embedder, for a while."""
    rec = agent.recognizer
    assert rec is not None
    before = rec.detector, rec.embedder
    rec.detector = detector or rec.detector
    rec.embedder = embedder or rec.embedder
    try:
        yield
    finally:
        rec.detector, rec.embedder = before


def tracking_rate(agent: EdgeAgent, frame: np.ndarray, n: int) -> tuple[float, float, int]:
    """Frames/s (wall, per CPU-second) while one person stays in view: decided
    once, then only followed; and how many events that made."""
    assert agent.recognizer is not None
    agent.recognizer.tracker.tracks.clear()
    agent.process_frame(Frame(np.full_like(frame, 90), 0, time.monotonic()))
    t0, c0 = time.perf_counter(), time.thread_time()
    made = 0
    for i in range(n):
        made += len(agent.process_frame(Frame(frame, i, time.monotonic())))
    return n / (time.perf_counter() - t0), n / (time.thread_time() - c0), made
