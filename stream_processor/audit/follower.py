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
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from stream_processor.audit import record
from stream_processor.audit.log import Appended, AuditSink
from stream_processor.errors import BrokerError

log = logging.getLogger(__name__)

_HEARTBEAT_PREFIX = b"_heartbeat/"


class LedgerAuditor:
    """Turns one ledger record into an audit entry (no broker here)."""

    def __init__(self, sink: AuditSink, consent_topic: str, policies_topic: str) -> None:
        self._sink = sink
        self.consent_topic = consent_topic
        self.policies_topic = policies_topic

    def take(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> Appended | None:
        source = f"{topic}/{partition}/{offset}"
        if key is None or key.startswith(_HEARTBEAT_PREFIX):
            return None
        if topic == self.consent_topic:
            return self._consent(key, value, source)
        if topic == self.policies_topic:
            return self._policy(key, value, source)
        return None

    def _consent(self, key: bytes, value: bytes | None, source: str) -> Appended | None:
        from stream_processor.policy.consent import ALL_PURPOSES, GivenBy, decode_consent

        if value is None:
            parts = key.decode(errors="replace").split("/")
            if len(parts) != 4:
                log.warning("consent tombstone with an unexpected key at %s", source)
                return None
            tenant, site, subject, purpose = parts
            return record.consent_record_removed(
                self._sink,
                tenant=tenant,
                site=site,
                subject=subject,
                purpose=None if purpose == ALL_PURPOSES else purpose,
                source=source,
            )
        try:
            rec = decode_consent(value)
        except Exception as exc:  # noqa: BLE001 - the processors refuse it too; not a fact
            log.warning("unreadable consent record at %s: %s", source, exc)
            return None
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

    def _policy(self, key: bytes, value: bytes | None, source: str) -> Appended | None:
        from stream_processor.policy.retention import decode_version

        # Each version is written under "tenant@version" (kept by compaction) and
        # "tenant" (the one in force): take the versions, once each.
        if b"@" not in key or value is None:
            return None
        try:
            v = decode_version(value)
        except Exception as exc:  # noqa: BLE001
            log.warning("unreadable policy version at %s: %s", source, exc)
            return None
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
) -> int:
    """Tail both topics until ``should_stop()``; returns how many entries were written."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    written = 0
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="facegate-audit"
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        tps = []
        for topic in (auditor.consent_topic, auditor.policies_topic):
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                raise BrokerError(f"topic {topic} does not exist; run: facegate stack up")
            tps += [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        state = offsets.load()
        for tp in tps:
            at = state.get(f"{tp.topic}/{tp.partition}")
            if at is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, at)
        while not should_stop():
            batch = consumer.poll(timeout_ms=poll_ms)
            if not batch:
                continue
            for tp, records in batch.items():
                for r in records:
                    if auditor.take(tp.topic, tp.partition, r.offset, r.key, r.value):
                        written += 1
                    state[f"{tp.topic}/{tp.partition}"] = r.offset + 1
            offsets.save(state)
    except KafkaError as exc:
        raise BrokerError(f"following the ledgers failed: {exc}") from exc
    finally:
        consumer.close()
    return written
