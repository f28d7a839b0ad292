"""What the web app's handlers use, built by the composition root and injected."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from stream_processor.audit.log import AuditSink
from stream_processor.audit.settings import AuditPaths
from stream_processor.notices.archive import NoticeArchive
from stream_processor.notices.config import RegistryFile
from stream_processor.notices.retention import PolicyFileRetention, RetentionSource
from stream_processor.rights.db import connect_rights_db
from stream_processor.rights.keycards import KeycardBook, register_keycard_metrics
from stream_processor.web.compliance import Milestones
from stream_processor.web.consent_counts import ConsentCounts
from stream_processor.web.dead_letters import DeadLetterCounts
from stream_processor.web.devices import DeviceTable, UnreachableDevices
from stream_processor.web.erasures import ErasureReads
from stream_processor.web.limits import SlidingWindowLimit
from stream_processor.web.overview import Overview
from stream_processor.web.policies import MemoryPolicyStore, PolicyStore
from stream_processor.web.settings import WebSettings
from stream_processor.web.store_reads import StoreReads
from stream_processor.web.tokens import TokenBook


@dataclass
class WebDeps:
    cameras: RegistryFile
    retention: RetentionSource
    archive: NoticeArchive
    keycards: KeycardBook
    tokens: TokenBook
    registry: CollectorRegistry
    #: The event store's reads (aggregates, retention); None: the console shows no figures.
    store: StoreReads | None = None
    devices: DeviceTable = field(default_factory=DeviceTable)
    policies: PolicyStore = field(default_factory=MemoryPolicyStore)
    consent: ConsentCounts = field(default_factory=ConsentCounts)
    dead_letters: DeadLetterCounts = field(default_factory=DeadLetterCounts)
    #: Erasure requests and receipts (the rights database); None: not available here.
    erasures: ErasureReads | None = None
    #: An erasure pending longer than this is overdue on the dashboard (30 days).
    erasure_sla_s: int = 30 * 86400
    withdrawal_alarm_s: int = 600
    #: How often an open live stream re-checks its token (a revocation ends it by then).
    live_recheck_s: float = 10.0
    #: How long a built overview is served before it is built again (the live feed's tick).
    overview_ttl_s: float = 1.0
    #: tenant → (built at, overview); read and written by the handlers and the live feeds.
    overview_cache: dict[str, tuple[float, Overview]] = field(default_factory=dict)
    #: The audit log the subject view writes to (None: the subject view is refused).
    audit: AuditSink | None = None
    #: When compliance figures first crossed their thresholds (None: not kept).
    milestones: Milestones | None = None
    #: compliance.yaml (impact assessments per site); None: none recorded.
    compliance_path: Path | None = None
    clock: Callable[[], float] = field(default=time.time)
    #: Public key-card form: at most 5 requests per client address per 10 minutes.
    form_limit: SlidingWindowLimit = field(default_factory=lambda: SlidingWindowLimit(5, 600))
    #: Receipt checks verify the whole log: at most 5 per client address per 10 minutes.
    receipt_limit: SlidingWindowLimit = field(default_factory=lambda: SlidingWindowLimit(5, 600))
    #: Every console token: at most 600 requests per minute (pages, API and live stream).
    token_limit: SlidingWindowLimit = field(default_factory=lambda: SlidingWindowLimit(600, 60))
    #: The published audit files served under /audit/ (None: not published here).
    audit_paths: AuditPaths | None = None
    #: The URL residents reach the app at; QR codes point there.
    public_url: str = "http://127.0.0.1:8080"
    #: Reverse proxies whose X-Forwarded-For names the client (empty: none is believed).
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()


DEPS: web.AppKey[WebDeps] = web.AppKey("facegate_deps", WebDeps)


def build_deps(
    state_dir: Path,
    settings: WebSettings,
    registry: CollectorRegistry,
    audit: AuditSink | None,
    clock: Callable[[], float] = time.time,
    audit_paths: AuditPaths | None = None,
    retention: RetentionSource | None = None,
    store: StoreReads | None = None,
    policies: PolicyStore | None = None,
    devices: DeviceTable | None = None,
    consent: ConsentCounts | None = None,
    dead_letters: DeadLetterCounts | None = None,
) -> WebDeps:
    """The production wiring: files under the state dir, the rights DB, metrics."""
    db = connect_rights_db(state_dir)
    keycards = KeycardBook(db, audit=audit, clock=clock)
    register_keycard_metrics(keycards, registry)
    devices = devices or DeviceTable()
    registry.register(UnreachableDevices(devices, clock))
    if audit_paths is not None:
        from stream_processor.audit.checkpoint import CheckpointFile
        from stream_processor.audit.log import FileAuditLog
        from stream_processor.audit.metrics import register_audit_metrics

        register_audit_metrics(
            FileAuditLog(audit_paths.log), CheckpointFile(audit_paths.checkpoints), registry
        )
    return WebDeps(
        cameras=RegistryFile(settings.cameras(state_dir)),
        retention=retention or PolicyFileRetention(settings.retention(state_dir)),
        archive=NoticeArchive(db, audit=audit, clock=clock),
        keycards=keycards,
        tokens=TokenBook(db, clock=clock),
        store=store,
        policies=policies or MemoryPolicyStore(),
        devices=devices,
        consent=consent or ConsentCounts(),
        dead_letters=dead_letters or DeadLetterCounts(),
        audit=audit,
        erasures=ErasureReads(db),
        erasure_sla_s=int(settings.erasure_sla_days * 86400),
        withdrawal_alarm_s=int(settings.withdrawal_overdue_after_s),
        milestones=Milestones(db),
        compliance_path=settings.compliance(state_dir),
        registry=registry,
        clock=clock,
        audit_paths=audit_paths if settings.publish_audit else None,
        public_url=settings.public_url,
        trusted_proxies=tuple(settings.trusted_proxies),
    )
