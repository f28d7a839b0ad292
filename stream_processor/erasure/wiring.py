"""Builds the erasure worker of one process (called by ``facegate erasure worker``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import faust
from prometheus_client import REGISTRY, CollectorRegistry

from stream_processor.erasure.app import create_app
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.service import Deps
from stream_processor.erasure.settings import ErasureSettings
from stream_processor.quarantine import ConsumerMetrics
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics
from stream_processor.runtime.targets import announce
from stream_processor.store.base import EventStore

log = logging.getLogger(__name__)


class LazyStore:
    """An ``EventStore`` that connects on first use (``factory`` may fail: an outage)."""

    def __init__(self, factory: Callable[[], EventStore]) -> None:
        self._factory = factory
        self._store: EventStore | None = None

    def __getattr__(self, name: str) -> Any:
        if self._store is None:
            self._store = self._factory()
        return getattr(self._store, name)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def make_deps(
    stack: BrokerSettings,
    settings: ErasureSettings,
    topics: Topics,
    consent_changelog: str,
    factory: Callable[[], EventStore],
) -> Deps:
    """The worker's blocking parts. Runs in the worker's own thread: every SQLite
    connection is made there."""
    from stream_processor.audit.wiring import kafka_publisher, open_audit
    from stream_processor.erasure.audit import ErasureAudit
    from stream_processor.erasure.book import ErasureBook
    from stream_processor.erasure.kafka_configs import cached, describe_topics
    from stream_processor.erasure.ledger_index import LedgerIndex
    from stream_processor.erasure.roster import StatusLedgerDevices, shared_roster
    from stream_processor.erasure.waiver import WaiverBook
    from stream_processor.erasure.withdrawal_tracker import WithdrawnFollower
    from stream_processor.erasure.withdrawals import WithdrawalBook
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.rights.keycards import KeycardBook
    from stream_processor.rights.receipt_proof import witness_now
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.runtime.registry import DeviceRegistry
    from stream_processor.store.settings import StoreSettings

    # Opened on first use: while the store is down a request is still taken (on the
    # record, in the book, commands sent) and only the store's steps wait.
    store = cast(EventStore, LazyStore(factory))
    db = connect_rights_db(stack.state_dir, sqlite_path=settings.db_path)
    audit = open_audit(stack.state_dir, role=Role.ERASURE)
    login = kafka_python_auth(stack, Role.ERASURE)
    publisher = kafka_publisher(stack.kafka_bootstrap, topics.audit_checkpoints, login)
    erasure_audit = ErasureAudit(
        audit.log, audit.key, audit.settings.log_id, audit.openings,
        ReceiptStore(db), audit.checkpointer(publisher), witness_now(audit),
    )  # fmt: skip
    # Topics that may hold a record naming the subject: events (raw, dead letters),
    # commands and acks, the requests, and the consent ledger with its table changelog.
    named = [
        topics.raw, topics.dlq, topics.commands, topics.acks, topics.erasure,
        topics.consent, consent_changelog,
    ]  # fmt: skip
    bootstrap = stack.kafka_bootstrap
    ledger = LedgerIndex(bootstrap, topics.consent, auth=login)
    # Every device the erasure waits for: the registry's, and every device that ever
    # reported on the shared status ledger (an unregistered gate included).
    reported = StatusLedgerDevices(bootstrap, topics.device_status, auth=login)
    # The shared registry (rights DB), never this host's broker account file.
    shared = db if settings.db_path is None else connect_rights_db(stack.state_dir)
    registry = DeviceRegistry(shared).roster
    keycards = KeycardBook(db)
    withdrawn = WithdrawnFollower(bootstrap, topics.consent, auth=login)
    waivers = WaiverBook(db)
    return Deps(
        store=store,
        book=ErasureBook(db),
        audit=erasure_audit,
        ledger_keys=ledger.keys,
        devices=shared_roster(registry, reported.devices),
        retentions=cached(
            lambda: describe_topics(bootstrap, named, login), settings.retention_refresh_s
        ),
        consent_topic=topics.consent,
        forget_openings=audit.openings.forget,
        forget_keycards=keycards.forget_subject,
        retired=waivers.retired,
        store_kind=StoreSettings().store,
        withdrawals=WithdrawalBook(db, _command_key(stack), int(time.time() * 1000)),
        withdrawn=withdrawn.changes,
        closing=[
            ledger.close,
            reported.close,
            withdrawn.close,
            publisher.close,
            audit.close,
            db.close,
            *([] if shared is db else [shared.close]),
        ],
    )


def _command_key(stack: BrokerSettings) -> bytes:
    """The deployment's command-id key; made here only on a single host (runtime.command_key)."""
    from stream_processor.audit.settings import AuditSettings
    from stream_processor.runtime.command_key import command_key

    return command_key(stack.state_dir, create=AuditSettings().mode != "topic")


def build(
    stack: BrokerSettings,
    settings: ErasureSettings,
    topics: Topics | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> faust.App:
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.store.factory import store_factory

    # Before the worker starts: a host of several without the first host's key stops
    # here with one line, not in the worker's thread.
    _command_key(stack)
    topics = topics or Topics()
    processor = ProcessorSettings()
    app_id = settings.app_id or f"{processor.app_id}-erasure"
    factory, where = store_factory(stack, processor.store_path)
    factory().close()  # create/migrate the schema before anything else

    deps = partial(
        make_deps, stack, settings, topics, f"{processor.app_id}-consent-changelog", factory
    )
    app, _service = create_app(
        stack, settings, topics, app_id, deps, ErasureMetrics(registry), ConsumerMetrics(registry)
    )
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
        announce(stack.state_dir, "facegate-erasure", settings.metrics_port, settings.metrics_host)
    log.info("erasure worker %s: %s → %s", app_id, stack.kafka_bootstrap, where)
    print(f"erasure worker {app_id}: {stack.kafka_bootstrap} → {where}", flush=True)  # noqa: T201
    return app
