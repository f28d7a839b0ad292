"""Where the console reads and writes policy versions: a port, and its Kafka implementation.

The Kafka one reads and writes the compacted policies topic exactly as
``facegate policy apply`` does (key ``tenant`` for the version in force,
``tenant@NNNNNNNN`` for history), so the workers pick an applied version up
within seconds whoever applied it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from stream_processor.policy.keys import history_key, policy_key
from stream_processor.policy.retention import PolicyVersion, decode_version
from stream_processor.runtime.settings import Topics


class PolicyStore(Protocol):
    def history(self, tenant: str) -> list[PolicyVersion]:
        """Every applied version of the tenant's policy, oldest first."""
        ...

    def write(self, version: PolicyVersion) -> None:
        """Put ``version`` in force (and in the history)."""
        ...


class KafkaPolicyStore:
    def __init__(
        self, bootstrap: str, topics: Topics, auth: Mapping[str, Any] | None = None
    ) -> None:
        """``auth``: the web's kafka-python login (runtime/kafka_auth)."""
        self._bootstrap, self._topics, self._topic = bootstrap, topics, topics.policies
        self._auth = dict(auth or {})
        self._lock = threading.Lock()

    def history(self, tenant: str) -> list[PolicyVersion]:

        prefix = f"{tenant}@".encode()
        versions = []
        for k, v in self._read().items():
            if not k.startswith(prefix):
                continue
            try:
                versions.append(decode_version(v))
            except ValueError:  # out of bounds: every worker dead-letters it, so never in force
                continue
        return sorted((v for v in versions if v.tenant == tenant), key=lambda v: v.version)

    def write(self, version: PolicyVersion) -> None:
        from stream_processor.runtime.ledger_client import write_records

        record = version.encode()
        with self._lock:  # one writer per process: versions are numbered by reading first
            write_records(
                self._bootstrap,
                self._topic,
                [
                    (history_key(version.tenant, version.version), record),
                    (policy_key(version.tenant), record),
                ],
                auth=self._auth,
            )
            self._tune_transport()

    def _read(self) -> dict[bytes, bytes]:
        from stream_processor.runtime.ledger_client import read_ledger

        return read_ledger(self._bootstrap, self._topic, timeout_s=15, auth=self._auth)

    def _tune_transport(self) -> None:
        """Raw and dead-letter topics follow the strictest policy in force, as after
        ``facegate policy apply``."""
        from stream_processor.policy.keys import HISTORY_MARK, is_internal
        from stream_processor.policy.retention import compile_version
        from stream_processor.runtime.topics import tune_transport_topics

        current = []
        for k, v in self._read().items():
            if v is None or is_internal(k) or HISTORY_MARK in k:
                continue
            try:
                current.append(compile_version(v))
            except Exception:  # noqa: BLE001, S112 - the processors refuse it too; not a rule
                continue
        tune_transport_topics(
            self._bootstrap,
            self._topics,
            [p.raw_retention_ms for p in current],
            [p.dlq_retention_ms for p in current],
            auth=self._auth,
        )


class MemoryPolicyStore:
    """A ``PolicyStore`` in memory, for a web app without Kafka (tests, previews)."""

    def __init__(self) -> None:
        self._versions: dict[str, list[PolicyVersion]] = {}

    def history(self, tenant: str) -> list[PolicyVersion]:
        return list(self._versions.get(tenant, []))

    def write(self, version: PolicyVersion) -> None:
        self._versions.setdefault(version.tenant, []).append(version)
