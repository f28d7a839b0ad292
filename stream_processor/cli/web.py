"""``facegate web serve|token``: the web app (composition root) and its console tokens."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import click

from stream_processor.cli.options import json_option
from stream_processor.runtime.kafka_auth import Role as KafkaRole
from stream_processor.runtime.kafka_auth import kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings
from stream_processor.runtime.targets import announce

if TYPE_CHECKING:
    from stream_processor.notices.policy_retention import PolicyTopicRetention
    from stream_processor.quarantine import ConsumerMetrics, KafkaDeadLetters
    from stream_processor.runtime.settings import Topics
    from stream_processor.web.consent_counts import ConsentCounts
    from stream_processor.web.dead_letters import DeadLetterCounts
    from stream_processor.web.devices import DeviceTable
    from stream_processor.web.settings import WebSettings
    from stream_processor.web.tokens import TokenBook


class Stoppable(Protocol):
    def stop(self) -> None: ...


@click.group()
def web() -> None:
    """The web app: firm console, camera notice pages, key-card requests, health, metrics."""


@web.command()
@click.option("--host", default=None, help="listen address (FACEGATE_WEB_HOST)")
@click.option("--port", type=int, default=None, help="listen port (FACEGATE_WEB_PORT)")
@click.option(
    "--tls/--no-tls", default=None, help="serve HTTPS with the project CA (FACEGATE_WEB_TLS)"
)
def serve(host: str | None, port: int | None, tls: bool | None) -> None:
    """Serve until interrupted; prints the dashboard URL."""
    from aiohttp import web as aioweb
    from prometheus_client import CollectorRegistry

    from stream_processor.audit.wiring import open_audit
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.quarantine import ConsumerMetrics, KafkaDeadLetters
    from stream_processor.runtime.settings import Topics
    from stream_processor.store.factory import store_factory
    from stream_processor.web.app import add_housekeeping, create_app
    from stream_processor.web.assets import ensure_assets
    from stream_processor.web.deps import build_deps
    from stream_processor.web.policies import KafkaPolicyStore
    from stream_processor.web.settings import WebSettings
    from stream_processor.web.store_reads import ThreadConfinedStore
    from stream_processor.web.tls import server_context

    stack = BrokerSettings()
    settings = WebSettings() if tls is None else WebSettings(tls=tls)
    topics = Topics()
    ensure_assets()
    registry = CollectorRegistry()
    login = kafka_python_auth(stack, KafkaRole.WEB)
    dead_letters = KafkaDeadLetters(stack.kafka_bootstrap, topics.dlq, auth=login)
    consumer_metrics = ConsumerMetrics(registry)  # one per registry: labelled by consumer
    views = _start_views(stack, settings, topics, consumer_metrics, dead_letters)
    # The store the processor writes (FACEGATE_STORE, FACEGATE_PROCESSOR_STORE_PATH).
    factory, where = store_factory(stack, ProcessorSettings().store_path)
    store = ThreadConfinedStore(factory)
    audit = open_audit(stack.state_dir, role=KafkaRole.WEB)
    audit.keep_synced()  # multi-host: the published log follows the one chain
    deps = build_deps(
        stack.state_dir,
        settings,
        registry,
        audit.log,
        audit_paths=audit.paths,
        retention=views.retention,
        store=store,
        devices=views.devices,
        consent=views.consent,
        dead_letters=views.letters,
        policies=KafkaPolicyStore(stack.kafka_bootstrap, topics, login),
    )
    app = create_app(deps)
    add_housekeeping(app, settings.keycard_contact_retention_days * 86400)
    bind_host, bind_port = host or settings.host, port or settings.port
    ssl_context = (
        server_context(settings, stack.state_dir, bind_host, registry) if settings.tls else None
    )
    scheme = "https" if ssl_context is not None else "http"
    click.echo(
        f"facegate web on {scheme}://{bind_host}:{bind_port} (public {settings.public_url}); "
        f"cameras {settings.cameras(stack.state_dir)}; retention from {views.retention_from}; "
        f"events from {where}"
    )
    click.echo(f"dashboard: {settings.public_url.rstrip('/')}/console")
    announce(stack.state_dir, "facegate-web", bind_port, bind_host, scheme=scheme)  # /metrics
    try:
        aioweb.run_app(app, host=bind_host, port=bind_port, print=None, ssl_context=ssl_context)
    finally:
        views.stop()
        dead_letters.close()
        store.close()
        audit.close()


@dataclass
class _Views:
    """The web's read-only views of Kafka topics, each followed on a thread of its own."""

    retention: PolicyTopicRetention | None
    retention_from: str
    devices: DeviceTable
    consent: ConsentCounts
    letters: DeadLetterCounts
    followers: list[Stoppable]

    def stop(self) -> None:
        """Stop all at once: each waits for its thread's current poll of Kafka, so one
        after the other a SIGTERM took their sum (up to 30 s under load)."""
        if not self.followers:
            return
        with ThreadPoolExecutor(max_workers=len(self.followers)) as pool:
            list(pool.map(lambda follower: follower.stop(), self.followers))


def _start_views(
    stack: BrokerSettings,
    settings: WebSettings,
    topics: Topics,
    consumer_metrics: ConsumerMetrics,
    dead_letters: KafkaDeadLetters,
) -> _Views:
    from stream_processor.quarantine import Quarantine
    from stream_processor.web.consent_counts import ConsentCounts, ConsentCountsFollower
    from stream_processor.web.dead_letters import DeadLetterCounts, DeadLetterFollower
    from stream_processor.web.devices import DeviceStatusFollower, DeviceTable

    login = kafka_python_auth(stack, KafkaRole.WEB)
    retention = None
    retention_from = str(settings.retention(stack.state_dir))
    if settings.retention_source == "kafka":
        from stream_processor.notices.policy_retention import PolicyTopicRetention

        retention = PolicyTopicRetention(
            stack.kafka_bootstrap, topics.policies,
            quarantine=Quarantine("web_policies", consumer_metrics), dead_letters=dead_letters,
            auth=login,
        ).start()  # fmt: skip
        if not retention.wait_caught_up(30):
            click.echo(
                f"warning: {topics.policies} not read yet; notices show no rule yet", err=True
            )
        retention_from = f"kafka {stack.kafka_bootstrap} {topics.policies}"
    devices = DeviceTable(settings.device_offline_after_s, settings.device_unreachable_after_s)
    consent = ConsentCounts()
    letters = DeadLetterCounts()
    followers: list[Stoppable] = [
        DeviceStatusFollower(stack.kafka_bootstrap, topics.device_status, devices,
                             Quarantine("web_device_status", consumer_metrics),
                             dead_letters, login).start(),
        ConsentCountsFollower(stack.kafka_bootstrap, topics.consent, consent,
                              Quarantine("web_consent_counts", consumer_metrics),
                              dead_letters, login).start(),
        DeadLetterFollower(stack.kafka_bootstrap, topics.dlq, letters,
                           Quarantine("web_dead_letter_counts", consumer_metrics),
                           dead_letters, login).start(),
    ]  # fmt: skip
    if retention is not None:
        followers.append(retention)
    return _Views(retention, retention_from, devices, consent, letters, followers)


@web.group()
def token() -> None:
    """Console tokens: one tenant and one role each (viewer, operator, privacy_officer)."""


def _book() -> TokenBook:
    from stream_processor.rights.db import connect_rights_db
    from stream_processor.web.tokens import TokenBook

    return TokenBook(connect_rights_db(BrokerSettings().state_dir))


@token.command("create")
@click.option("--tenant", required=True, help="the property firm the token sees")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "privacy_officer"]),
    required=True,
    help="viewer < operator < privacy_officer",
)
@click.option("--label", required=True, help="who holds it (written into audit entries)")
@click.option("--expires", default=None, help="lifetime, e.g. 90d, 12h, 30m (default: none)")
def create(tenant: str, role: str, label: str, expires: str | None) -> None:
    """Create a token and print it ONCE (only its hash is kept)."""
    from stream_processor.web.tokens import Role, parse_ttl

    secret, tok = _book().create(tenant, Role(role), label, parse_ttl(expires) if expires else None)
    until = _when(tok.expires_at_ms) if tok.expires_at_ms else "never"
    click.echo(f"token {tok.id} for {tenant} ({role}, {label}), expires {until}:", err=True)
    click.echo(secret)


@token.command("list")
@click.option("--tenant", default=None, help="only this tenant's tokens")
@json_option
def list_(tenant: str | None, as_json: bool) -> None:
    """Tokens (ids, never secrets) with their state."""
    now = int(time.time() * 1000)
    rows = []
    for t in _book().list(tenant):
        state = "revoked" if t.revoked_at_ms else ("valid" if t.valid_at(now) else "expired")
        until = _when(t.expires_at_ms) if t.expires_at_ms else None
        rows.append({"id": t.id, "tenant": t.tenant, "role": t.role.value, "state": state,
                     "expires": until, "label": t.label})  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    click.echo("id\ttenant\trole\tstate\texpires\tlabel" if rows else "no tokens")
    for r in rows:
        click.echo("\t".join(str(r[k] or "-") for k in ("id", "tenant", "role", "state",
                                                        "expires", "label")))  # fmt: skip


@token.command("revoke")
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke a token by id; its browser sessions end at once."""
    t = _book().revoke(token_id)
    click.echo(f"revoked {t.id} ({t.tenant}, {t.role.value}, {t.label})")


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
