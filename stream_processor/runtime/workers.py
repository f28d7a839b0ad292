"""The Faust settings the cloud's stream workers (processor, erasure) share.

Returned as keyword arguments, not an app: this package stays free of Faust
(``tests/test_layout.py``), and each worker adds what is its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream_processor.runtime.settings import BrokerSettings


def worker_app_settings(
    stack: BrokerSettings, datadir: Path, commit_interval_s: float
) -> dict[str, Any]:
    """``faust.App`` settings of an at-least-once worker whose state lives outside Faust.

    Creates ``datadir`` (Faust writes its local files there)."""
    datadir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": f"kafka://{stack.kafka_bootstrap}",
        "store": "memory://",
        "datadir": str(datadir),
        "web_enabled": False,
        "topic_allow_declare": True,
        "topic_replication_factor": 1,
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": commit_interval_s,
        # A record whose handling raised must not be acked: it is read again
        # after a restart (at-least-once; every step is idempotent).
        "stream_ack_exceptions": False,
        "stream_ack_cancelled_tasks": False,
        "producer_acks": -1,
    }
