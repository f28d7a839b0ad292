"""``KafkaProbe`` (``runtime.status``) over kafka-python: what ``facegate status`` asks
Kafka about the consumer groups, the consumer lag and the dead-letter rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any


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
