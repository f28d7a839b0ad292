"""The blocking dead-letter sink of kafka-python consumers (``quarantine.guard_blocking``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream_processor.errors import BrokerError


class KafkaDeadLetters:
    """``BlockingDeadLetterSink`` on the dead-letter topic (kafka-python, acks=all)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        timeout_s: float = 30.0,
        auth: Mapping[str, Any] | None = None,
    ) -> None:
        """``auth``: the writing role's kafka-python login (runtime/kafka_auth)."""
        self.topic = topic
        self._bootstrap = bootstrap
        self._auth = dict(auth or {})
        self._timeout_s = timeout_s
        self._producer: Any = None

    def send(self, key: bytes, value: bytes) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        try:
            if self._producer is None:  # connected on first use: most runs never need it
                self._producer = KafkaProducer(
                    bootstrap_servers=self._bootstrap, acks="all", client_id="facegate-dlq",
                    **self._auth,
                )  # fmt: skip
            self._producer.send(self.topic, key=key, value=value).get(timeout=self._timeout_s)
        except KafkaError as exc:
            raise BrokerError(f"dead letter not written to {self.topic}: {exc}") from exc

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None


__all__ = ["KafkaDeadLetters"]
