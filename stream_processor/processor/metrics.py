"""Prometheus metrics of a processor worker. Labels come from bounded sets only
(event kind, outcome/discard reason, tenant and site ids) — never a pseudonym."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.decisions = Counter(
            "facegate_processor_decisions_total",
            "Events decided, by kind and outcome (stored or the discard reason)",
            ["kind", "outcome"],
            registry=registry,
        )
        self.stored_duplicates = Counter(
            "facegate_processor_store_duplicates_total",
            "Rows the store already had (replays after a restart)",
            registry=registry,
        )
        self.dead_letters = Counter(
            "facegate_processor_dead_letters_total",
            "Raw or ledger records refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.store_unavailable = Gauge(
            "facegate_processor_store_unavailable",
            "1 while the event store cannot write and the worker takes no input",
            registry=registry,
        )
        self._add_ledger_gate(registry)
        self.store_retries = Counter(
            "facegate_processor_store_retries_total",
            "Batch writes retried because the event store was unavailable",
            registry=registry,
        )
        self.sweep_failures = Counter(
            "facegate_retention_sweep_failures_total",
            "Retention sweeps that failed (the store was unavailable); the next one retries",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "facegate_processor_batch_seconds",
            "Time to decide and store one batch",
            registry=registry,
        )
        self.consent_changes = Counter(
            "facegate_consent_records_total",
            "Consent ledger records applied, by status",
            ["status"],
            registry=registry,
        )
        self.withdrawal_deleted = Counter(
            "facegate_consent_withdrawal_deleted_rows_total",
            "Stored events deleted because consent was withdrawn",
            registry=registry,
        )
        self.edge_commands = Counter(
            "facegate_edge_commands_sent_total",
            "Commands sent to the edge, by type",
            ["type"],
            registry=registry,
        )
        self.swept = Counter(
            "facegate_retention_deleted_rows_total",
            "Rows deleted by the retention sweeper",
            ["tenant", "site", "kind"],
            registry=registry,
        )
        self.oldest_age = Gauge(
            "facegate_retention_oldest_age_seconds",
            "Age of the oldest stored event per site (after the last sweep)",
            ["tenant", "site"],
            registry=registry,
        )
        self.overdue_rows = Gauge(
            "facegate_retention_overdue_rows",
            "Stored rows past their rule per site (should be 0 after a sweep)",
            ["tenant", "site"],
            registry=registry,
        )
        self.consumer_lag = consumer_lag_gauge(registry)
        self.policy_version = Gauge(
            "facegate_policy_version", "Policy version in force", ["tenant"], registry=registry
        )

    def _add_ledger_gate(self, registry: CollectorRegistry) -> None:
        self.ledger_waits = Counter(
            "facegate_processor_ledger_waits_total",
            "Batches that waited for a ledger view to read up to the ledger's end",
            ["ledger"],
            registry=registry,
        )
        self.ledger_wait_seconds = Histogram(
            "facegate_processor_ledger_wait_seconds",
            "How long a batch waited for the ledger views to be current",
            registry=registry,
        )
        self.ledger_look_seconds = Histogram(
            "facegate_processor_ledger_look_seconds",
            "How long one read of the ledgers' end offsets took (the gate's look before a batch)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 12.0),
            registry=registry,
        )
        self.ledger_stale = Gauge(
            "facegate_processor_ledger_stale",
            "1 while a ledger view is behind for long and the worker takes no input",
            registry=registry,
        )


def consumer_lag_gauge(registry: CollectorRegistry) -> Gauge:
    """Bounded labels: topic and partition number (partitions of the raw topic)."""
    return Gauge(
        "facegate_processor_consumer_lag",
        "Records in a raw-topic partition this worker has not read yet (high"
        " watermark minus position), per assigned partition",
        ["topic", "partition"],
        registry=registry,
    )
