"""Typed settings of a processor worker (env prefix ``FACEGATE_PROCESSOR_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_processor.runtime.workers import PRODUCER_TIMEOUT_RANGE_S, PRODUCER_TIMEOUT_S


class ProcessorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FACEGATE_PROCESSOR_", extra="forbid", allow_inf_nan=False
    )

    app_id: str = Field("facegate-processor", description="Faust app id = Kafka consumer group")
    worker_name: str = Field("worker-1", description="names this worker's data folder")
    store_path: Path | None = Field(
        None, description="SQLite file; default <state_dir>/store/events.sqlite"
    )
    store_writer: Literal["process", "inline"] = Field(
        "process",
        description="write batches in a store process of the worker's own (the next batch is "
        "decided meanwhile, on another core) or inline on the event loop",
    )
    batch_size: int = Field(
        10_000, ge=1, le=100_000, description="most events per store transaction (measured best)"
    )
    batch_within_s: float = Field(0.25, gt=0, le=60, description="flush a partial batch after this")
    commit_interval_s: float = Field(1.0, gt=0, le=600, description="Kafka offset commit interval")
    producer_timeout_s: float = Field(
        PRODUCER_TIMEOUT_S,
        ge=PRODUCER_TIMEOUT_RANGE_S[0],
        le=PRODUCER_TIMEOUT_RANGE_S[1],
        description="a send (dead letter, command, table update) fails after this long without"
        " a broker's answer, and the worker stops with nothing committed past it, for its"
        " supervisor to restart (FACEGATE_PROCESSOR_PRODUCER_TIMEOUT_S)",
    )
    stream_buffer_maxsize: int = Field(
        32_768,
        ge=1024,
        le=1_000_000,
        description="events Faust may prefetch per ledger stream; small values throttle a "
        "first start's ledger replay (faust's default 4096 read near a thousand records/s)",
    )
    store_retry_first_s: float = Field(
        0.5, gt=0, le=60, description="first wait before a write is retried on an unavailable store"
    )
    store_retry_max_s: float = Field(
        30.0, gt=0, le=600, description="longest wait between retries (the wait doubles up to it)"
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus port; 0 = off")
    metrics_host: str = Field(
        "127.0.0.1",
        description="address /metrics binds; 0.0.0.0 where Prometheus scrapes from another"
        " container or host (compose, Kubernetes)",
    )
    sweep_interval_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="retention sweeper period (FACEGATE_PROCESSOR_SWEEP_INTERVAL_S)",
    )
    sweep_batch_size: int = Field(
        5000, ge=1, le=1_000_000, description="rows deleted per sweeper transaction"
    )
    withdrawal_recheck_s: float = Field(
        300.0,
        ge=0,
        le=30 * 86_400,
        description="for this long after a withdrawal, each sweep deletes the subject's face "
        "events again (catches events another worker stored before it saw the withdrawal)",
    )
