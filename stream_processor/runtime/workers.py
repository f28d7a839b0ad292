"""The Faust settings the cloud's stream workers (processor, erasure) share.

Returned as keyword arguments, not an app: this package stays free of Faust
(``tests/test_layout.py``), and each worker adds what is its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream_processor.errors import ConfigError
from stream_processor.runtime.settings import BrokerSettings
from stream_processor.runtime.topics import replication_for

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


#: How long a worker's producer tries to deliver one batch before the send fails
#: (``producer_request_timeout``; Faust's default is 1200 s). aiokafka expires a batch
#: after this long without a successful produce, whatever the cause: a broker killed
#: (connection refused), paused (no answer) or without a partition leader; and a request
#: to a paused leader is given up only then (the same setting), so the batch cannot move
#: to the new leader sooner. It outlasts the consumer's session (10 s), a KRaft broker's
#: fencing (9 s) and a leader election several times over, so a broker restart, leader
#: move or a pause of a minute costs no error; and it is under the supervisor's stop
#: timeout (``TimeoutStopSec=90`` in deploy/systemd), so a pending send does not hold
#: up a stop. A send that fails stops the worker before any offset is committed past
#: it (``processor/faust_tuning.FailFastProducer``); the supervisor restarts it.
PRODUCER_TIMEOUT_S = 60.0
#: Bounds of ``producer_timeout_s``: long enough for one produce round trip under load,
#: short enough that a silent broker is noticed within minutes.
PRODUCER_TIMEOUT_RANGE_S = (1.0, 120.0)


def worker_replication(stack: BrokerSettings) -> tuple[int, int]:
    """(replication factor, min in-sync replicas) of the topics a worker creates, as
    the stack chooses them for its own from the cluster's size
    (``FACEGATE_KAFKA_NODES``, else the local stack's recorded node count): 3 and 2
    from three brokers up, 1 and 1 on a single node."""
    return replication_for(stack.kafka_nodes)


def worker_app_settings(
    stack: BrokerSettings,
    datadir: Path,
    commit_interval_s: float,
    producer_timeout_s: float = PRODUCER_TIMEOUT_S,
) -> dict[str, Any]:
    """``faust.App`` settings of an at-least-once worker whose state lives outside Faust.

    Creates ``datadir`` (Faust writes its local files there).

    The producer is not idempotent: Faust passes ``enable_idempotence`` to aiokafka only
    inside exactly-once transactions, and aiokafka's idempotent producer never expires a
    batch (it retries until the broker answers), which would make a worker whose broker
    is gone wait silently instead of failing within ``producer_timeout_s``. What a
    worker writes tolerates a repeat: commands carry deterministic ids the device drops
    when repeated, ledger tables are keyed, dead letters name their source coordinates.
    """
    low, high = PRODUCER_TIMEOUT_RANGE_S
    if not low <= producer_timeout_s <= high:
        raise ConfigError(f"producer timeout {producer_timeout_s} s is outside {low}..{high} s")
    datadir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": f"kafka://{stack.kafka_bootstrap}",
        "store": "memory://",
        "datadir": str(datadir),
        "web_enabled": False,
        "topic_allow_declare": True,
        # Every topic Faust creates (table changelogs, the assignor's leader topic,
        # repartition and reply topics) is replicated as the stack's own: a changelog on
        # one replica loses the worker's table state with that broker.
        "topic_replication_factor": worker_replication(stack)[0],
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": commit_interval_s,
        # A record whose handling raised must not be acked: it is read again
        # after a restart (at-least-once; every step is idempotent).
        "stream_ack_exceptions": False,
        "stream_ack_cancelled_tasks": False,
        "producer_acks": -1,
        "producer_request_timeout": producer_timeout_s,
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
