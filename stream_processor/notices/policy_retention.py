"""``RetentionSource`` over the policy in force: follows the compacted policies topic.

The notice pages read retention from the same place the processors enforce
it from: the latest ``PolicyVersion`` per tenant on ``facegate.policies``
(written by ``facegate policy apply``). A background thread tails the topic
(``stream_processor.tail``), so a newly applied policy shows on the pages within a
poll interval, without a restart. A version the processors would refuse is
dead-lettered with its coordinates and the last good one kept; a lost broker is
reconnected.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from stream_processor.notices.retention import retention_of
from stream_processor.policy.keys import is_history, is_internal
from stream_processor.policy.retention import CompiledPolicy, compile_version
from stream_processor.quarantine import (
    BlockingDeadLetterSink,
    KafkaDeadLetters,
    Quarantine,
    Refusal,
    process_metrics,
)
from stream_processor.tail import TailRecord, TopicTail, kafka_consumer

log = logging.getLogger(__name__)


class PolicyTopicRetention:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        poll_ms: int = 200,
        *,
        quarantine: Quarantine | None = None,
        dead_letters: BlockingDeadLetterSink | None = None,
        auth: Mapping[str, Any] | None = None,
    ) -> None:
        """``quarantine`` defaults to ``web_policies`` on the default registry,
        ``dead_letters`` to the dead-letter topic of ``FACEGATE_TOPIC_DLQ``."""
        self._topic = topic
        self._policies: dict[str, CompiledPolicy] = {}
        if dead_letters is None:
            from stream_processor.runtime.settings import Topics

            dead_letters = KafkaDeadLetters(bootstrap, Topics().dlq, auth=auth)
        self._tail = TopicTail(
            topic,
            self.take,
            quarantine or Quarantine("web_policies", process_metrics()),
            dead_letters,
            kafka_consumer(bootstrap, "facegate-web-policies", auth),
            poll_ms,
        )

    def start(self) -> PolicyTopicRetention:
        self._tail.start("policy-follower")
        return self

    def wait_caught_up(self, timeout_s: float) -> bool:
        """True once everything on the topic at start-up has been read."""
        return self._tail.wait_caught_up(timeout_s)

    def stop(self) -> None:
        self._tail.stop()

    def version(self, tenant: str) -> int | None:
        policy = self._policies.get(tenant)
        return policy.version if policy else None

    def retention_for(self, tenant: str, site: str, kind: str, purpose: str) -> dt.timedelta | None:
        return retention_of(self._policies.get(tenant), site, kind, purpose)

    def take(self, record: TailRecord) -> Refusal | None:
        return self.apply(record.key, record.value)

    def apply(self, key: bytes | None, value: bytes | None) -> Refusal | None:
        """Take one record of the topic; a refusal keeps the last good version."""
        if key is None or is_history(key) or is_internal(key):
            return None
        tenant = key.decode(errors="replace")
        if value is None:
            self._policies.pop(tenant, None)
            return None
        try:
            compiled = compile_version(value)
        except Exception as exc:  # noqa: BLE001 - any invalid document is refused, as data
            return Refusal("invalid_policy", f"{type(exc).__name__}: {str(exc)[:200]}")
        if compiled.tenant != tenant:
            return Refusal("key_mismatch", "policy key differs from its tenant")
        self._policies[tenant] = compiled
        return None
