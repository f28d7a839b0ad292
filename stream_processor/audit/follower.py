"""Puts the ledgers on the record: consent changes and policy versions, from their topics.

``facegate audit follow`` tails the compacted consent and policies topics and
writes one audit entry per consent record (granted, withdrawn, or a
tombstone: the record removed) and per applied policy version. The ledgers are
the source of truth the processors enforce, so the audit log states exactly
what was in force, without the consent and policy code calling the log.

Offsets are kept in ``<state>/audit/follower-offsets.json`` after each batch:
a crash between an append and the offset write repeats at most one batch
(entries carry their ``source`` topic/partition/offset, so a repeat is
visible). Compaction may drop a superseded consent record before it is read
if the follower is down for longer than the topic's compaction lag: run it
continuously, beside the processors.

Anyone with the office's rights can write the ledgers, so a record may be hostile or
broken: what the processors would refuse, or what the log refuses to hold (a subject
that is not a pseudonym), is dead-lettered with its coordinates and passed
(``stream_processor.quarantine``). A failing log (disk full) is an outage: the follower
holds on that record and retries with back-off; nothing is skipped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stream_processor.audit import record
from stream_processor.audit.log import Appended, AuditSink
from stream_processor.errors import BrokerError
from stream_processor.policy.keys import is_heartbeat, is_history
from stream_processor.processor.ledger import (
    LedgerRefusal,
    read_consent,
    read_policy,
)
from stream_processor.quarantine import (
    BlockingDeadLetterSink,
    Coordinates,
    Quarantine,
    Refusal,
    guard_blocking,
)
from stream_processor.tail import seek_each

log = logging.getLogger(__name__)


class LedgerAuditor:
    """Turns one ledger record into an audit entry (no broker here).

    A record is read the way the processors read it (``processor.ledger``): what they
    refuse is refused here too, as a ``Refusal`` for the quarantine, so the log never
    states a consent or policy that no processor enforced.
    """

    def __init__(self, sink: AuditSink, consent_topic: str, policies_topic: str) -> None:
        self._sink = sink
        self.consent_topic = consent_topic
        self.policies_topic = policies_topic

    def take(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> Appended | Refusal | None:
        source = f"{topic}/{partition}/{offset}"
        if key is not None and is_heartbeat(key):
            return None
        if topic == self.consent_topic:
            return self._consent(key, value, source)
        if topic == self.policies_topic:
            return self._policy(key, value, source)
        return None

    def _consent(self, key: bytes | None, value: bytes | None, source: str) -> Appended | Refusal:
        from stream_processor.policy.consent import ALL_PURPOSES, GivenBy

        if key is not None and value is None:
            return self._removed(key, source)
        rec = read_consent(key, value)
        if rec is None:  # unreachable: heartbeats and tombstones are handled above
            return Refusal("missing_value", "consent record without a value")
        if isinstance(rec, LedgerRefusal):
            return Refusal(rec.reason, rec.detail)
        return record.consent_changed(
            self._sink,
            tenant=rec.tenant,
            site=rec.site,
            subject=rec.subject,
            purpose=None if rec.purpose == ALL_PURPOSES else rec.purpose,
            granted=rec.status.value == "granted",
            by_guardian=rec.given_by is GivenBy.GUARDIAN,
            evidence_ref=rec.evidence_ref,
            minor=rec.minor,
            at_ms=rec.at_ms,
            source=source,
        )

    def _removed(self, key: bytes, source: str) -> Appended | Refusal:
        from stream_processor.policy.consent import ALL_PURPOSES

        parts = key.decode(errors="replace").split("/")
        if len(parts) != 4:
            return Refusal("bad_key", "consent tombstone key is not tenant/site/subject/purpose")
        tenant, site, subject, purpose = parts
        return record.consent_record_removed(
            self._sink,
            tenant=tenant,
            site=site,
            subject=subject,
            purpose=None if purpose == ALL_PURPOSES else purpose,
            source=source,
        )

    def _policy(
        self, key: bytes | None, value: bytes | None, source: str
    ) -> Appended | Refusal | None:
        from stream_processor.policy.retention import decode_version

        checked = read_policy(key, value)
        if isinstance(checked, LedgerRefusal):
            return Refusal(checked.reason, checked.detail)
        # Each version is written under "tenant@version" (kept by compaction) and
        # "tenant" (the one in force): take the versions, once each.
        if checked is None or key is None or not is_history(key):
            return None
        v = decode_version(checked)
        return record.policy_version(
            self._sink,
            tenant=v.tenant,
            version=v.version,
            document=v.document,
            applied_by=v.applied_by,
            applied_at_ms=v.applied_at_ms,
            source=source,
        )


class OffsetFile:
    """Next offset per (topic, partition), written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): int(v) for k, v in data.items()}

    def save(self, offsets: dict[str, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(offsets, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)


def follow(
    bootstrap: str,
    auditor: LedgerAuditor,
    offsets: OffsetFile,
    should_stop: Callable[[], bool],
    poll_ms: int = 500,
    *,
    quarantine: Quarantine,
    dead_letters: BlockingDeadLetterSink,
    auth: Mapping[str, Any] | None = None,
) -> int:
    """Tail both topics until ``should_stop()``; returns how many entries were written.

    A record the auditor refuses, or that cannot be logged, is dead-lettered and passed
    (``quarantine``); a failing audit log (disk full, unreadable tail) holds the follower
    on that record, retried with back-off, until it can be written. ``auth``: the
    audit role's kafka-python login (runtime/kafka_auth)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="facegate-audit",
            **(auth or {}),
        )  # fmt: skip
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    written = 0

    def take(at: Coordinates, key: bytes | None, value: bytes | None) -> Refusal | None:
        nonlocal written
        out = auditor.take(at.topic, at.partition, at.offset, key, value)
        if isinstance(out, Refusal):
            return out
        written += out is not None
        return None

    try:
        tps = []
        for topic in (auditor.consent_topic, auditor.policies_topic):
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                raise BrokerError(f"topic {topic} does not exist; run: facegate stack up")
            tps += [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        state = offsets.load()
        seek_each(consumer, tps, lambda tp: state.get(f"{tp.topic}/{tp.partition}"))
        while not should_stop():
            batch = consumer.poll(timeout_ms=poll_ms)
            if not batch:
                continue
            for tp, records in batch.items():
                for r in records:
                    where = Coordinates(tp.topic, tp.partition, r.offset)
                    guard_blocking(lambda: take(where, r.key, r.value), r.value, where,  # noqa: B023 - called at once
                                   quarantine, dead_letters)  # fmt: skip
                    state[f"{tp.topic}/{tp.partition}"] = r.offset + 1
            offsets.save(state)
    except KafkaError as exc:
        raise BrokerError(f"following the ledgers failed: {exc}") from exc
    finally:
        consumer.close()
    return written
