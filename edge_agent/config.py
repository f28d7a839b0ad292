"""The edge agent's one config file (YAML), typed and strict, with env overrides.

Precedence: environment (``FACEGATE_EDGE_<SECTION>__<FIELD>``, e.g.
``FACEGATE_EDGE_RECOGNITION__THRESHOLD=0.55``) over the file over defaults.
Relative paths are taken relative to the config file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge_agent.errors import ConfigError
from edge_agent.wire.bounds import MAX_QUEUE_AGE_S
from edge_agent.wire.events import PURPOSE_PATTERN


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoConfig(_Section):
    kind: Literal["camera", "rtsp", "file", "folder", "none"] = Field(
        "camera", description="camera index, RTSP/HTTP stream, video file, image folder, or "
        "none (credentials only)"
    )
    uri: str = Field("0", description="camera index, stream URL, file or folder path")
    fps: float = Field(
        10.0, ge=0, le=240, description="folder replay rate in frames/s (0 = as fast as possible)"
    )
    loop: bool = Field(False, description="replay the folder or file forever")

    @model_validator(mode="after")
    def _uri(self) -> VideoConfig:
        if self.kind == "camera" and not self.uri.isdigit():
            raise ValueError("video.uri must be a camera index (e.g. '0') for kind camera")
        if self.kind == "rtsp" and "://" not in self.uri:
            raise ValueError("video.uri must be a URL (rtsp://…) for kind rtsp")
        return self


class DetectorConfig(_Section):
    kind: Literal["blazeface"] = Field("blazeface", description="detector family (decoder)")
    path: Path = Field(
        Path("models/blazeface_back_256.opt.onnx"),
        description="ONNX model file (.opt.onnx: rewritten at set-up for speed, same ids)",
    )
    model_id: str = Field("blazeface-back256", pattern=r"^[A-Za-z0-9._-]{1,30}$",
                          description="short id put in events")
    input_size: int = Field(256, ge=64, le=1024, description="square input side in pixels")
    mean: float = Field(127.5, description="normalisation: (pixel − mean) / std")
    std: float = Field(127.5, gt=0, description="normalisation: (pixel − mean) / std")
    score_threshold: float = Field(0.6, gt=0, lt=1, description="minimum face score")
    nms_iou: float = Field(0.3, gt=0, lt=1, description="IoU above which boxes are merged")
    letterbox: Literal["stride", "square"] = Field(
        "stride", description="pad the scaled frame to a multiple of S/8 (models with a free "
        "input size, e.g. the .opt files: less work) or to the full S×S square"
    )
    threads: int = Field(1, ge=1, le=16, description="ONNX Runtime intra-op threads")


class EmbedderConfig(_Section):
    kind: Literal["arcface"] = Field(
        "arcface", description="ArcFace-style NCHW embedder aligned to the 112 template"
    )
    path: Path = Field(
        Path("models/mobilefacenet.opt.onnx"), description="ONNX model file (see detector.path)"
    )
    model_id: str = Field("mobilefacenet-192", pattern=r"^[A-Za-z0-9._-]{1,30}$",
                          description="short id put in events and the gallery")
    input_size: int = Field(112, ge=32, le=512, description="square input side in pixels")
    mean: float = Field(127.5, description="normalisation: (pixel − mean) / std")
    std: float = Field(128.0, gt=0, description="normalisation: (pixel − mean) / std")
    channel_order: Literal["rgb", "bgr"] = Field("rgb", description="channel order of the input")
    threads: int = Field(1, ge=1, le=16, description="ONNX Runtime intra-op threads")


class RecognitionConfig(_Section):
    threshold: float = Field(0.5, gt=0, lt=1, description="cosine similarity to match; "
                             "calibrate with 'facegate edge calibrate'")
    high_band: float = Field(0.65, gt=0, le=1, description="score at which the band is 'high'")
    unknown_after_frames: int = Field(
        3, ge=1, le=100, description="frames without a match before 'unknown face'"
    )
    min_face_px: int = Field(40, ge=16, description="smaller faces are tracked, not recognised")
    track_iou: float = Field(0.3, gt=0, lt=1, description="IoU that continues a track")
    max_missed_frames: int = Field(
        5, ge=0, le=300, description="frames a face may be lost before its track ends"
    )
    cooldown_s: float = Field(
        10.0, ge=0, description="no second decision for the same resident within this time"
    )

    @model_validator(mode="after")
    def _bands(self) -> RecognitionConfig:
        if self.high_band <= self.threshold:
            raise ValueError("recognition.high_band must be above recognition.threshold")
        return self


class GalleryConfig(_Section):
    path: Path = Field(Path("data/gallery.fgg"), description="encrypted gallery file")
    key_file: Path | None = Field(
        Path("data/gallery.key"),
        description="base64 key file (0600); FACEGATE_EDGE_GALLERY_KEY overrides it",
    )
    reload_s: float = Field(2.0, gt=0, description="how often to pick up enrollments")


class AccessConfig(_Section):
    kind: Literal["none", "line_file", "hid_line"] = Field(
        "none",
        description="card reader / PIN pad input: none; line_file (lines appended to a file:"
        " 'card N', 'pin N', 'manual'); hid_line (a keyboard-wedge/HID reader in serial mode:"
        " one card number per line on a tty, FIFO or pipe)",
    )
    path: Path | None = Field(
        None, description="the line file (line_file) or the reader's device (hid_line)"
    )

    @model_validator(mode="after")
    def _path(self) -> AccessConfig:
        if self.kind != "none" and self.path is None:
            raise ValueError(f"access.path is required for kind {self.kind}")
        return self


class OutboxConfig(_Section):
    path: Path = Field(Path("data/outbox.sqlite"), description="SQLite outbox")
    max_rows: int = Field(
        1_000_000, ge=100, description="ceiling; beyond it events are refused, counted, logged"
    )
    max_age_s: float = Field(
        MAX_QUEUE_AGE_S,
        gt=0,
        description="queued events older than this are purged; the bridge refuses events"
        " older than its FACEGATE_BRIDGE_MAX_EVENT_AGE_S (same default)",
    )
    purge_interval_s: float = Field(60.0, gt=0, description="how often to purge old events")


class HttpConfig(_Section):
    enabled: bool = Field(True, description="serve /metrics and /healthz")
    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(9108, ge=0, le=65535, description="listen port (0 = any free port)")
    announce_dir: Path | None = Field(
        None,
        description="folder a Prometheus watches for file_sd targets (the local stack's"
        " <state>/monitoring/targets): the agent announces its /metrics there while it"
        " runs; None = off",
    )
    max_frame_age_s: float = Field(
        10.0, gt=0, description="unhealthy when the last frame is older than this"
    )


class EdgeConfig(BaseSettings):
    """Everything the edge agent needs, in one file."""

    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="FACEGATE_EDGE_", env_nested_delimiter="__", frozen=True
    )

    device_config: Path = Field(
        Path("device.json"),
        description="connection file written by 'facegate devices add' (identity + MQTT)",
    )
    site_secret: Path = Field(
        Path("data/site.secret"), description="per-site pseudonym secret (never leaves the site)"
    )
    purpose: str = Field(
        "access_control", pattern=PURPOSE_PATTERN, description="purpose stated in every event"
    )
    video: VideoConfig = Field(default_factory=VideoConfig, description="video input")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="face detector")
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig, description="face embedder")
    recognition: RecognitionConfig = Field(
        default_factory=RecognitionConfig, description="matching, tracking, decisions"
    )
    gallery: GalleryConfig = Field(default_factory=GalleryConfig, description="gallery")
    access: AccessConfig = Field(default_factory=AccessConfig, description="cards, PINs")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="durable outbox")
    http: HttpConfig = Field(default_factory=HttpConfig, description="metrics and health")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init = the file's content (passed by load_config); env overrides it.
        return (env_settings, init_settings)

    def check_files(self) -> list[str]:
        """Problems a device would hit at start-up (missing files), as messages."""
        problems = []
        for name, path in (
            ("device_config", self.device_config),
            ("detector.path", self.detector.path),
            ("embedder.path", self.embedder.path),
        ):
            if not path.is_file():
                problems.append(f"{name}: {path} does not exist")
        if self.video.kind in ("file", "folder") and not Path(self.video.uri).exists():
            problems.append(f"video.uri: {self.video.uri} does not exist")
        return problems


def _resolve(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make the file's relative paths relative to the file's folder."""
    out = dict(data)
    for key in ("device_config", "site_secret"):
        if isinstance(out.get(key), str):
            out[key] = str(base / out[key])
    for section, keys in (
        ("detector", ("path",)), ("embedder", ("path",)), ("gallery", ("path", "key_file")),
        ("access", ("path",)), ("outbox", ("path",)),
    ):
        sub = out.get(section)
        if isinstance(sub, dict):
            out[section] = {
                k: (str(base / v) if k in keys and isinstance(v, str) else v)
                for k, v in sub.items()
            }
    video = out.get("video")
    if isinstance(video, dict) and video.get("kind") in ("file", "folder"):
        if isinstance(video.get("uri"), str):
            out["video"] = {**video, "uri": str(base / video["uri"])}
    return out


def format_errors(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
        for err in exc.errors()
    ]


def load_config(path: Path) -> EdgeConfig:
    """Read and validate; raises ConfigError listing every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        # An empty file would silently give every default (a camera, ./models/…).
        raise ConfigError(f"{path}: the file is empty; see deploy/edge/edge-agent.example.yaml")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return EdgeConfig(**_resolve(raw, path.resolve().parent))
    except ValidationError as exc:
        raise ConfigError("\n".join(format_errors(exc))) from None
