"""Audit facts: what a process asks the one chaining writer to append (multi-host mode).

A fact is an entry without its place in the chain (no ``seq``, ``prev`` or
``hash``): the writer gives it one. Each fact has a unique ``id``, the key of
its fact record and of the chained entry's record, so the process that
published it can find its entry on the chain topic; a fact that must be chained once
(an erasure's completion) has an id derived from its ``Once`` key, and the writer
chains no second fact of such a type with an id already on the chain. The subject is already a
``c1_`` commitment: the salt that opens it stays on the publishing host.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec

from edge_agent.wire.whole import check_whole
from stream_processor.audit.entries import AuditEntry, EntryType, build_entry
from stream_processor.errors import BrokerError

_FACT_ID = r"^[0-9a-f]{32}$"


class AuditFact(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One fact as published to the facts topic. Version 1."""

    v: Literal[1]
    id: Annotated[str, msgspec.Meta(pattern=_FACT_ID)]
    at_ms: int
    type: EntryType
    tenant: str | None
    site: str | None
    subject: str | None
    body: dict[str, Any]

    def __post_init__(self) -> None:
        check_whole(self)  # msgspec's pattern check takes a trailing newline (wire/whole.py)

    def chained(self, seq: int, prev: str) -> AuditEntry:
        """The entry at ``seq`` after ``prev``; refuses what the log refuses (identifiers,
        a subject that is not a commitment, non-canonical values)."""
        return build_entry(
            seq=seq,
            at_ms=self.at_ms,
            type=self.type,
            tenant=self.tenant,
            site=self.site,
            subject=self.subject,
            body=self.body,
            prev=prev,
        )


_decoder = msgspec.json.Decoder(AuditFact)


def new_fact(
    type: EntryType,
    *,
    at_ms: int,
    tenant: str | None,
    site: str | None,
    subject: str | None,
    body: dict[str, Any],
    id: str | None = None,
) -> AuditFact:
    """``id``: a deterministic id for a fact that must be chained once (``log.Once``);
    by default a random one."""
    return AuditFact(
        v=1,
        id=id or uuid.uuid4().hex,
        at_ms=at_ms,
        type=type,
        tenant=tenant,
        site=site,
        subject=subject,
        body=body,
    )


def encode_fact(fact: AuditFact) -> bytes:
    return msgspec.json.encode(fact)


def decode_fact(raw: bytes) -> AuditFact:
    """Raises msgspec.DecodeError / ValidationError on anything but a version-1 fact."""
    return _decoder.decode(raw)


class KafkaFactPublisher:
    """Publishes facts to the one-partition facts topic: acks=all, idempotent, and
    each publish waits for the broker (a fact is durable before its entry is awaited)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        auth: dict[str, Any] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self._topic = topic
        self._timeout_s = timeout_s
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                acks="all",
                enable_idempotence=True,
                client_id="facegate-audit-facts",
                **(auth or {}),
            )
        except KafkaError as exc:
            raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc

    def publish(self, fact: AuditFact) -> None:
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(self._topic, key=fact.id.encode(), value=encode_fact(fact))
            future.get(timeout=self._timeout_s)
        except KafkaError as exc:
            raise BrokerError(f"audit fact not published to {self._topic}: {exc}") from exc

    def close(self) -> None:
        self._producer.close(timeout=5)
