"""Builds the agent's parts from the config: the one place where concrete classes are chosen."""

from __future__ import annotations

from edge_agent.access.inputs import CredentialInput, LineFileCredentials
from edge_agent.config import DetectorConfig, EdgeConfig, EmbedderConfig, VideoConfig
from edge_agent.gallery.keys import load_key
from edge_agent.gallery.store import GalleryFile
from edge_agent.metrics import EdgeMetrics
from edge_agent.video.sources import FrameSource, ImageFolderSource, OpenCvSource
from edge_agent.vision.blazeface import BlazeFaceDetector, BlazeFaceParams
from edge_agent.vision.embedder import EmbedderParams, OnnxArcFaceEmbedder
from edge_agent.vision.recognizer import RecognitionPolicy, Recognizer
from edge_agent.vision.track import IouTracker


def build_detector(c: DetectorConfig, min_face_px: int = 0) -> BlazeFaceDetector:
    params = BlazeFaceParams(
        input_size=c.input_size, mean=c.mean, std=c.std, score_threshold=c.score_threshold,
        nms_iou=c.nms_iou, min_face_px=min_face_px, square=c.letterbox == "square",
    )
    return BlazeFaceDetector(c.path, params, threads=c.threads, model_id=c.model_id)


def build_embedder(c: EmbedderConfig) -> OnnxArcFaceEmbedder:
    params = EmbedderParams(
        input_size=c.input_size, mean=c.mean, std=c.std, rgb=c.channel_order == "rgb"
    )
    return OnnxArcFaceEmbedder(c.path, params, threads=c.threads, model_id=c.model_id)


def build_recognizer(config: EdgeConfig, metrics: EdgeMetrics) -> Recognizer:
    r = config.recognition
    policy = RecognitionPolicy(
        threshold=r.threshold, high_band=r.high_band,
        unknown_after_frames=r.unknown_after_frames, min_face_px=r.min_face_px,
        cooldown_s=r.cooldown_s,
    )
    return Recognizer(
        build_detector(config.detector),
        build_embedder(config.embedder),
        policy,
        IouTracker(min_iou=r.track_iou, max_missed=r.max_missed_frames),
        observe=metrics.observe_stage,
    )


def build_source(c: VideoConfig, metrics: EdgeMetrics) -> FrameSource | None:
    def count() -> None:
        metrics.frames.labels(result="decode_error").inc()

    if c.kind == "none":
        return None
    if c.kind == "folder":
        from pathlib import Path

        return ImageFolderSource(Path(c.uri), fps=c.fps, loop=c.loop, on_decode_error=count)
    return OpenCvSource(c.uri, live=c.kind in ("camera", "rtsp"), on_decode_error=count)


def build_credentials(config: EdgeConfig) -> list[CredentialInput]:
    if config.access.kind == "line_file":
        assert config.access.path is not None
        return [LineFileCredentials(config.access.path)]
    if config.access.kind == "hid_line":
        from edge_agent.access.reader import HidLineReader

        assert config.access.path is not None
        return [HidLineReader(config.access.path)]
    return []


def open_gallery(config: EdgeConfig) -> GalleryFile:
    return GalleryFile(config.gallery.path, load_key(config.gallery.key_file))
