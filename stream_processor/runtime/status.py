"""The whole pipeline at a glance, seen from outside: brokers, bridges, workers, web,
consumer lag and the dead-letter rate.

Nothing here asks a process how it feels: a bridge or a worker counts as up
when it is a member of its Kafka consumer group, the web app when ``/healthz``
answers. ``observe`` gathers the facts through small probes; ``assess`` is the
pure decision of what is up and what is down.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from stream_processor.runtime.replication import (
    ReplicationProblem,
    TopicReplication,
    cluster_problems,
)


@dataclass(frozen=True)
class Targets:
    """Where each part of the pipeline is found (from the settings of each process)."""

    kafka_bootstrap: str
    mqtt: tuple[str, int]
    web_url: str
    #: part name → the Kafka consumer group whose members are that part's processes
    groups: Mapping[str, str]
    raw_topic: str
    dlq_topic: str
    lag_group: str
    postgres: tuple[str, int] | None = None
    dlq_window_s: float = 300.0
    #: brokers in the cluster: the replicas every pipeline topic must have
    kafka_nodes: int = 1


@dataclass(frozen=True)
class Observations:
    """What the probes saw; ``None`` where a probe could not look (Kafka down)."""

    kafka_error: str | None
    mqtt_open: bool
    web_error: str | None
    members: Mapping[str, int | None] = field(default_factory=dict)
    lag: int | None = None
    dead_letters: int | None = None
    postgres_open: bool | None = None
    #: the pipeline topics' replication; None when it was not seen
    replication: tuple[TopicReplication, ...] | None = None
    #: why the replication was not seen (Kafka up, the look failed)
    replication_error: str | None = None


@dataclass(frozen=True)
class Part:
    name: str
    up: bool
    detail: str


@dataclass(frozen=True)
class PipelineStatus:
    parts: tuple[Part, ...]
    consumer_lag: int | None
    dead_letters_per_minute: float | None
    #: topics replicated below what the cluster's size asks, or out of sync
    replication: tuple[ReplicationProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return all(p.up for p in self.parts) and not self.replication

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "parts": [asdict(p) for p in self.parts],
            "consumer_lag": self.consumer_lag,
            "dead_letters_per_minute": self.dead_letters_per_minute,
            "replication_problems": [asdict(p) for p in self.replication],
        }


def assess(targets: Targets, seen: Observations) -> PipelineStatus:
    """Which parts are up, from what was seen (pure)."""
    host, port = targets.mqtt
    parts = [
        Part("kafka", seen.kafka_error is None, seen.kafka_error or targets.kafka_bootstrap),
        Part("mqtt", seen.mqtt_open, f"{host}:{port}" + ("" if seen.mqtt_open else " closed")),
    ]
    if targets.postgres is not None:
        pg_host, pg_port = targets.postgres
        up = bool(seen.postgres_open)
        parts.append(Part("postgres", up, f"{pg_host}:{pg_port}" + ("" if up else " closed")))
    for name, group in targets.groups.items():
        count = seen.members.get(name)
        if count is None:
            parts.append(Part(name, False, f"unknown (Kafka down); group {group}"))
        else:
            parts.append(Part(name, count > 0, f"{count} running (group {group})"))
    parts.append(Part("web", seen.web_error is None, seen.web_error or targets.web_url))
    rate = None
    if seen.dead_letters is not None:
        rate = round(seen.dead_letters * 60.0 / targets.dlq_window_s, 2)
    return PipelineStatus(tuple(parts), seen.lag, rate, _replication(targets, seen))


def _replication(targets: Targets, seen: Observations) -> tuple[ReplicationProblem, ...]:
    if seen.replication_error is not None:
        why = f"not seen: {seen.replication_error}"
        return (ReplicationProblem("(every pipeline topic)", why, "unknown"),)
    if seen.replication is None:  # Kafka down: said once, by its part
        return ()
    return tuple(cluster_problems(seen.replication, targets.kafka_nodes))


class KafkaProbe(Protocol):
    def members(self, group: str) -> int: ...

    def lag(self, group: str, topic: str) -> int: ...

    def records_since(self, topic: str, since_ms: int) -> int: ...

    def close(self) -> None: ...


def tcp_open(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def http_error(url: str, timeout_s: float = 2.0, cafile: str | None = None) -> str | None:
    """``None`` when ``url`` answers 200; else what went wrong, in a few words. An https
    URL's certificate is verified against ``cafile`` (None: the system's CAs)."""
    if not url.startswith(("http://", "https://")):
        return f"{url}: not an http(s) URL"
    try:
        # Inside: a CA file that is not there yet is the web part's problem, not a crash.
        context = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
        with urllib.request.urlopen(url, timeout=timeout_s, context=context) as response:  # noqa: S310
            return None if response.status == 200 else f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as exc:  # the app answers, unhealthy: say why it says so
        why = " ".join(exc.read(300).decode(errors="replace").split())
        return f"{url}: HTTP {exc.code} {why}".rstrip()
    except OSError as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"


def observe(
    targets: Targets,
    connect: Callable[[str], KafkaProbe],
    tcp: Callable[[str, int], bool] = tcp_open,
    http: Callable[[str], str | None] = http_error,
    clock: Callable[[], float] = time.time,
    replication: Callable[[], list[TopicReplication]] | None = None,
) -> Observations:
    """Look at every part; a part that cannot be looked at is reported, never raised.
    ``replication``: looks up the pipeline topics' replicas (None: not checked)."""
    from stream_processor.errors import BrokerError

    mqtt_open = tcp(*targets.mqtt)
    postgres_open = tcp(*targets.postgres) if targets.postgres is not None else None
    web_error = http(targets.web_url.rstrip("/") + "/healthz")
    try:
        probe = connect(targets.kafka_bootstrap)
    except BrokerError as exc:
        return Observations(str(exc), mqtt_open, web_error, postgres_open=postgres_open)
    try:
        members = {name: probe.members(group) for name, group in targets.groups.items()}
        lag = probe.lag(targets.lag_group, targets.raw_topic)
        since_ms = int((clock() - targets.dlq_window_s) * 1000)
        dead = probe.records_since(targets.dlq_topic, since_ms)
    except BrokerError as exc:
        return Observations(str(exc), mqtt_open, web_error, postgres_open=postgres_open)
    finally:
        probe.close()
    replicas, replication_error = None, None
    if replication is not None:
        try:
            replicas = tuple(replication())
        except BrokerError as exc:
            replication_error = str(exc)
    return Observations(
        None, mqtt_open, web_error, members, lag, dead, postgres_open, replicas, replication_error
    )
