"""``RetentionSource`` over the policy in force: follows the compacted policies topic.

The notice pages read retention from the same place the processors enforce
it from: the latest ``PolicyVersion`` per tenant on ``facegate.policies``
(written by ``facegate policy apply``). A background thread tails the topic,
so a newly applied policy shows on the pages within a poll interval, without
a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from stream_processor.errors import BrokerError
from stream_processor.notices.retention import retention_of
from stream_processor.policy.keys import is_history, is_internal
from stream_processor.policy.retention import CompiledPolicy, compile_version

log = logging.getLogger(__name__)


class PolicyTopicRetention:
    def __init__(self, bootstrap: str, topic: str, poll_ms: int = 200) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._poll_ms = poll_ms
        self._policies: dict[str, CompiledPolicy] = {}
        self._caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> PolicyTopicRetention:
        self._thread = threading.Thread(target=self._run, name="policy-follower", daemon=True)
        self._thread.start()
        return self

    def wait_caught_up(self, timeout_s: float) -> bool:
        """True once everything on the topic at start-up has been read."""
        return self._caught_up.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def version(self, tenant: str) -> int | None:
        policy = self._policies.get(tenant)
        return policy.version if policy else None

    def retention_for(self, tenant: str, site: str, kind: str, purpose: str) -> dt.timedelta | None:
        if self._error is not None:
            raise BrokerError(f"policy follower stopped: {self._error}")
        return retention_of(self._policies.get(tenant), site, kind, purpose)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record of the topic (public for tests of the decoding rules)."""
        if key is None or is_history(key) or is_internal(key):
            return
        tenant = key.decode(errors="replace")
        if value is None:
            self._policies.pop(tenant, None)
            return
        try:
            compiled = compile_version(value)
        except Exception as exc:  # noqa: BLE001 - the processors refuse it too; keep the last good
            log.warning("policy for %s on %s refused: %s", tenant, self._topic, exc)
            return
        if compiled.tenant == tenant:
            self._policies[tenant] = compiled

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                client_id="facegate-web-policies",
            )
            try:
                partitions = None
                while partitions is None and not self._stop.is_set():
                    partitions = consumer.partitions_for_topic(self._topic)
                    if partitions is None:
                        time.sleep(1)
                if partitions is None:
                    return
                tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
                consumer.assign(tps)
                consumer.seek_to_beginning(*tps)
                end = consumer.end_offsets(tps)
                while not self._stop.is_set():
                    for records in consumer.poll(timeout_ms=self._poll_ms).values():
                        for r in records:
                            self.apply(r.key, r.value)
                    if not self._caught_up.is_set() and all(
                        consumer.position(tp) >= end[tp] for tp in tps
                    ):
                        self._caught_up.set()
            finally:
                consumer.close()
        except KafkaError as exc:
            log.error("policy follower on %s failed: %s", self._topic, exc)
            self._error = exc
