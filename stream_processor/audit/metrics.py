"""Audit-log health as Prometheus metrics, read from the files at scrape time.

    facegate_audit_entries                          entries in the log (head seq + 1)
    facegate_audit_unsigned_entries                 entries after the last signed checkpoint
    facegate_audit_last_checkpoint_age_seconds      age of the last checkpoint (-1: none yet)
    facegate_audit_unpublished_checkpoints          checkpoints not yet on the Kafka topic

Alert when entries stay unsigned or unpublished for long: until a checkpoint
covers them (and is outside the operator's files), the tail can be rewritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from stream_processor.audit.checkpoint import CheckpointFile
from stream_processor.audit.log import FileAuditLog


class AuditCollector(Collector):
    def __init__(
        self,
        log: FileAuditLog,
        checkpoints: CheckpointFile,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log
        self._checkpoints = checkpoints
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        head = self._log.head()
        last = self._checkpoints.last()
        signed = last.seq if last is not None else -1
        yield GaugeMetricFamily(
            "facegate_audit_entries", "entries in the audit log", value=head.seq + 1
        )
        yield GaugeMetricFamily(
            "facegate_audit_unsigned_entries",
            "entries after the last signed checkpoint",
            value=max(0, head.seq - signed),
        )
        age = self._clock() - last.at_ms / 1000 if last is not None else -1.0
        yield GaugeMetricFamily(
            "facegate_audit_last_checkpoint_age_seconds",
            "age of the last signed checkpoint (-1: none yet)",
            value=age,
        )
        yield GaugeMetricFamily(
            "facegate_audit_unpublished_checkpoints",
            "signed checkpoints not yet published to Kafka",
            value=len(self._checkpoints.unpublished()),
        )


def register_audit_metrics(
    log: FileAuditLog, checkpoints: CheckpointFile, registry: CollectorRegistry
) -> AuditCollector:
    collector = AuditCollector(log, checkpoints)
    registry.register(collector)
    return collector
