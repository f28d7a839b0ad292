"""What an erasure does, as pure functions: the records to write, the counts to take back,
the command to send, and when Kafka's last copy is gone.

The worker (``service``) feeds these with what the store, the ledger and the
broker report; nothing here touches a broker, a store or a clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from edge_agent.wire.commands import CommandType, EdgeCommand
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure.progress import ErasureRequest
from stream_processor.policy.consent import (
    ALL_PURPOSES,
    ConsentRecord,
    ConsentStatus,
    GivenBy,
    consent_key,
)
from stream_processor.processor.enforce import MINUTE_MS, STORED
from stream_processor.processor.ledger import deterministic_uuid7
from stream_processor.rights.receipts import (
    RETENTION_CHECK_INTERVAL_MS,
    KafkaCopy,
    Remnant,
    last_copy_gone_by,
)
from stream_processor.store.base import AggregateKey, StoredEvent

#: Kafka's default ``log.cleaner.backoff.ms`` is 15 s; the project's broker runs with 5 s.
CLEANER_BACKOFF_MS = 15_000


def command_id_of(request: ErasureRequest) -> str:
    """The erase command's id: derived from the request, so a redelivered request
    sends the same command (the device and ``with_ack`` see one command)."""
    return deterministic_uuid7(request.requested_at_ms, b"erase/" + request.request_id.encode())


def erase_command(request: ErasureRequest, command_id: str, now_ms: int) -> EdgeCommand:
    """The command every device of the site gets: remove the template, purge the outbox."""
    return EdgeCommand(
        schema_version=1,
        command_id=command_id,
        type=CommandType.ERASE_SUBJECT,
        tenant=request.tenant,
        site=request.site,
        subject=request.subject,
        issued_at_ms=now_ms,
        request_id=request.request_id,
    )


def site_devices(
    devices: Iterable[DeviceIdentity], tenant: str, site: str
) -> list[tuple[str, str]]:
    """(gate, device) of every registered device of one site."""
    return sorted({(d.gate, d.device) for d in devices if (d.tenant, d.site) == (tenant, site)})


def withdrawals(request: ErasureRequest, now_ms: int) -> list[ConsentRecord]:
    """Withdrawal records for the consent ledger: every purpose (``*``) for a full
    erasure, else one per purpose in scope. Written before the tombstones, so every
    worker applies the withdrawal (and its re-check deletions) before it forgets."""
    purposes = [ALL_PURPOSES] if request.purposes is None else sorted(set(request.purposes))
    return [
        ConsentRecord(
            tenant=request.tenant,
            site=request.site,
            subject=request.subject,
            purpose=p,
            status=ConsentStatus.WITHDRAWN,
            given_by=GivenBy.SELF,
            at_ms=now_ms,
        )
        for p in purposes
    ]


def consent_keys_to_forget(keys: Iterable[bytes], request: ErasureRequest) -> list[bytes]:
    """The subject's ledger keys (among ``keys``) that the erasure tombstones: all of
    them for a full erasure, else those of the purposes in scope."""
    prefix = consent_key(request.tenant, request.site, request.subject, "")
    mine = sorted(k for k in keys if k.startswith(prefix))
    if request.purposes is None:
        return mine
    wanted = {
        consent_key(request.tenant, request.site, request.subject, p) for p in request.purposes
    }
    return [k for k in mine if k in wanted]


def in_scope(events: Iterable[StoredEvent], request: ErasureRequest) -> list[StoredEvent]:
    if request.purposes is None:
        return list(events)
    purposes = set(request.purposes)
    return [e for e in events if e.purpose in purposes]


def aggregate_contributions(events: Iterable[StoredEvent]) -> dict[AggregateKey, int]:
    """What the subject's stored events added to the per-minute counts, as negative
    counts: adding them back takes the subject out of every aggregate (a cell that
    counted only the subject drops to 0)."""
    counts: Counter[AggregateKey] = Counter()
    for e in events:
        minute = e.occurred_at_ms - e.occurred_at_ms % MINUTE_MS
        counts[AggregateKey(minute, e.tenant, e.site, e.gate, e.kind, e.decision, STORED)] += 1
    return {k: -n for k, n in counts.items()}


@dataclass(frozen=True)
class TopicRetention:
    """A topic's configs as the broker reports them (the ones that bound a copy's life)."""

    topic: str
    cleanup_policy: str
    retention_ms: int
    segment_ms: int
    max_compaction_lag_ms: int = 0
    delete_retention_ms: int = 0

    @classmethod
    def from_configs(cls, topic: str, configs: Mapping[str, str]) -> TopicRetention:
        def num(name: str, default: int) -> int:
            value = configs.get(name)
            return int(value) if value not in (None, "") else default

        return cls(
            topic=topic,
            cleanup_policy=configs.get("cleanup.policy", "delete"),
            retention_ms=num("retention.ms", 7 * 24 * 3600 * 1000),
            segment_ms=num("segment.ms", 7 * 24 * 3600 * 1000),
            max_compaction_lag_ms=num("max.compaction.lag.ms", 2**63 - 1),
            delete_retention_ms=num("delete.retention.ms", 24 * 3600 * 1000),
        )


def compacted_gone_by(
    at_ms: int, t: TopicRetention, cleaner_backoff_ms: int = CLEANER_BACKOFF_MS
) -> int:
    """When a compacted topic has dropped a key tombstoned at ``at_ms``, the tombstone
    included (its key names the subject): the value goes once its segment rolls
    (heartbeats roll it within 1.5 S) and the cleaner runs (≤ max(0, L − S) + B);
    the tombstone D + S + B later (docs/processor.md, "Gone within T")."""
    s, b = t.segment_ms, cleaner_backoff_ms
    lag = max(0, t.max_compaction_lag_ms - s)
    return at_ms + s + s // 2 + lag + b + t.delete_retention_ms + s + b


def kafka_copies(
    retentions: Sequence[TopicRetention],
    at_ms: int,
    check_interval_ms: int = RETENTION_CHECK_INTERVAL_MS,
    cleaner_backoff_ms: int = CLEANER_BACKOFF_MS,
) -> list[KafkaCopy]:
    """For each topic that may still hold a record naming the subject (written no later
    than ``at_ms``): when its last copy is gone by the topic's configured retention.
    A topic that keeps records forever (retention -1) is reported with -1."""
    out: list[KafkaCopy] = []
    for t in sorted(retentions, key=lambda r: r.topic):
        policies = set(t.cleanup_policy.replace(" ", "").split(","))
        if "delete" in policies and t.retention_ms < 0 and "compact" not in policies:
            gone = -1
        elif "compact" in policies:
            gone = compacted_gone_by(at_ms, t, cleaner_backoff_ms)
            if "delete" in policies and t.retention_ms >= 0:
                gone = min(
                    gone, last_copy_gone_by(at_ms, t.retention_ms, t.segment_ms, check_interval_ms)
                )
        else:
            gone = last_copy_gone_by(at_ms, t.retention_ms, t.segment_ms, check_interval_ms)
        out.append(KafkaCopy(topic=t.topic, gone_by_ms=gone))
    return out


#: Mosquitto's ``persistent_client_expiration`` as the stack configures it (14 days).
MQTT_SESSION_BOUND_MS = 14 * 24 * 3600 * 1000


def remnants(
    at_ms: int,
    kafka: Sequence[KafkaCopy],
    store_kind: str,
    waived: Sequence[str] = (),
    mqtt_session_bound_ms: int = MQTT_SESSION_BOUND_MS,
) -> list[Remnant]:
    """Every place a copy naming the subject may still be at ``at_ms``, and when it goes:
    the Kafka topics by their retention, the MQTT broker's queued messages, the event
    store's free space, and any waived device (no bound: it never confirmed)."""
    out = [
        Remnant(
            where=f"kafka:{k.topic}",
            until_ms=k.gone_by_ms,
            how="topic retention or compaction (the configs the broker reports)",
        )  # fmt: skip
        for k in kafka
    ]
    out.append(
        Remnant(
            where="mosquitto:queued",
            until_ms=at_ms + mqtt_session_bound_ms,
            how="QoS 1 messages queued for a disconnected session (a gate's events for the "
            "bridge, the erase command for an offline gate) leave when delivered or when "
            "the session expires (persistent_client_expiration)",
        )
    )
    if store_kind == "sqlite":
        free = Remnant(
            where="store:free_pages", until_ms=at_ms,
            how="SQLite secure_delete zeroes deleted rows; the WAL was truncated at completion",
        )  # fmt: skip
    else:
        free = Remnant(
            where="store:free_pages", until_ms=-1,
            how="PostgreSQL reuses but does not zero dead rows (VACUUM run at completion); "
            "WAL archive and backups expire by their own retention (docs/erasure.md)",
        )  # fmt: skip
    out.append(free)
    out += [
        Remnant(
            where=f"edge:{who}",
            until_ms=-1,
            how="waived: the device never confirmed; its templates go when it is wiped",
        )  # fmt: skip
        for who in waived
    ]
    return out


__all__ = [
    "CLEANER_BACKOFF_MS",
    "MQTT_SESSION_BOUND_MS",
    "TopicRetention",
    "aggregate_contributions",
    "command_id_of",
    "compacted_gone_by",
    "consent_keys_to_forget",
    "erase_command",
    "in_scope",
    "kafka_copies",
    "remnants",
    "site_devices",
    "withdrawals",
]
