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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


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

    @property
    def ok(self) -> bool:
        return all(p.up for p in self.parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "parts": [asdict(p) for p in self.parts],
            "consumer_lag": self.consumer_lag,
            "dead_letters_per_minute": self.dead_letters_per_minute,
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
    return PipelineStatus(tuple(parts), seen.lag, rate)


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
) -> Observations:
    """Look at every part; a part that cannot be looked at is reported, never raised."""
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
    return Observations(None, mqtt_open, web_error, members, lag, dead, postgres_open)


class KafkaPythonProbe:
    """``KafkaProbe`` over kafka-python's admin client and a consumer (synchronous CLI).

    Every Kafka error leaves as ``BrokerError``: a probe reports, it does not crash.
    """

    def __init__(
        self, bootstrap: str, timeout_ms: int = 5000, auth: Mapping[str, Any] | None = None
    ) -> None:
        """``auth``: the status role's kafka-python login (runtime/kafka_auth)."""
        from kafka import KafkaAdminClient, KafkaConsumer

        self._bootstrap = bootstrap
        login = dict(auth or {})
        from stream_processor.runtime.kafka_auth import check_login

        check_login(bootstrap, login)
        with self._broker("connect"):
            self._admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, client_id="facegate-status",
                request_timeout_ms=timeout_ms, **login,
            )  # fmt: skip
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap, client_id="facegate-status",
                enable_auto_commit=False, request_timeout_ms=timeout_ms + 1000, **login,
            )  # fmt: skip

    @contextmanager
    def _broker(self, what: str) -> Iterator[None]:
        from kafka.errors import KafkaError

        from stream_processor.errors import BrokerError

        try:
            yield
        except KafkaError as exc:
            raise BrokerError(f"Kafka at {self._bootstrap}: {what} failed: {exc}") from exc

    def _partitions(self, topic: str) -> list[Any]:
        from kafka import TopicPartition

        found = self._consumer.partitions_for_topic(topic) or ()
        return [TopicPartition(topic, p) for p in sorted(found)]

    def members(self, group: str) -> int:
        # DescribeGroups v2, sent by hand: kafka-python 2.3 asks v3 for the group's
        # authorized operations and cannot parse the answer of a broker with an
        # authorizer (ValueError: not a valid ACLOperation).
        from kafka.errors import for_code
        from kafka.protocol.admin import DescribeGroupsRequest

        from stream_processor.errors import BrokerError

        def describe() -> Any:
            (coordinator,) = self._admin._find_coordinator_ids([group]).values()
            (response,) = self._admin.send_requests(
                [(DescribeGroupsRequest[2](groups=(group,)), coordinator)],
                response_fn=lambda r: r,
            )
            error = for_code(response.groups[0][0])
            # A coordinator just made still loads the group (COORDINATOR_LOAD_IN_PROGRESS).
            if error.retriable:
                raise error()
            return response.groups[0]

        with self._broker(f"describing group {group}"):
            error_code, _, _, _, _, members = self._retrying(describe)
        if error_code:
            raise BrokerError(f"Kafka at {self._bootstrap}: group {group}: error {error_code}")
        return len(members)

    def _retrying(self, call: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """``call()``, again while Kafka says to retry: a young cluster creates its group
        coordinator (``__consumer_offsets``) only when a group is first asked for."""
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return call()
            except KafkaError as exc:
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def lag(self, group: str, topic: str) -> int:
        with self._broker(f"reading the offsets of {group}"):
            tps = self._partitions(topic)
            if not tps:
                return 0
            committed = self._retrying(
                lambda: self._admin.list_consumer_group_offsets(group, partitions=tps)
            )
            end = self._consumer.end_offsets(tps)
            first = self._consumer.beginning_offsets(tps)
        total = 0
        for tp in tps:
            done = committed.get(tp)
            start = done.offset if done is not None and done.offset >= 0 else int(first[tp])
            total += max(0, int(end[tp]) - start)
        return total

    def records_since(self, topic: str, since_ms: int) -> int:
        with self._broker(f"counting recent records of {topic}"):
            tps = self._partitions(topic)
            if not tps:
                return 0
            end = self._consumer.end_offsets(tps)
            found = self._consumer.offsets_for_times({tp: since_ms for tp in tps})
        return sum(
            int(end[tp]) - (found[tp].offset if found.get(tp) is not None else int(end[tp]))
            for tp in tps
        )

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()
