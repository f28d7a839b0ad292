"""The Faust settings the cloud's stream workers (processor, erasure) share.

Returned as keyword arguments, not an app: this package stays free of Faust
(``tests/test_layout.py``), and each worker adds what is its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream_processor.runtime.settings import BrokerSettings

#: aiokafka consumer timeouts of the workers' own consumers (the processor's raw
#: consumer). A broker that is paused or cut off keeps its connections open and answers
#: nothing: every request to it waits out ``request_timeout_ms`` before the client asks
#: another broker who leads now. aiokafka's 40 s default made a paused raw leader cost
#: ~50 s of stalled ingest; 12 s still outlasts a JoinGroup, which the coordinator may
#: hold for the rebalance timeout (= the 10 s session timeout: a member that stops
#: heartbeating loses its partitions after that long).
AIOKAFKA_CONSUMER_TIMEOUTS: dict[str, int] = {
    "request_timeout_ms": 12_000,
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 3_000,
    # Leader moves are normally learnt from the error a request returns; a silent broker
    # returns none, so the metadata is also refreshed on this period.
    "metadata_max_age_ms": 15_000,
}


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
        # Faust's defaults (request 90 s, session and rebalance 60 s, metadata 5 min)
        # left an agent waiting up to 90 s on a paused broker. Faust requires the session
        # timeout <= the request timeout, and a JoinGroup may be held for the rebalance
        # timeout, so: session 10 s < rebalance 20 s < request 25 s.
        "broker_session_timeout": 10.0,
        "broker_rebalance_timeout": 20.0,
        "broker_request_timeout": 25.0,
        "consumer_metadata_max_age_ms": 30_000,
        "producer_metadata_max_age_ms": 30_000,
    }
