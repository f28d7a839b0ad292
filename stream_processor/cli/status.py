"""``facegate status``: the whole pipeline on one screen; exit 1 when a part is down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from stream_processor.cli.options import json_option

if TYPE_CHECKING:
    from stream_processor.web.settings import WebSettings


#: Listen-on-every-interface addresses: the app is asked on this host instead.
_ANY = ("0.0.0.0", "::", "")  # noqa: S104 - compared against, never bound


def web_probe(web: WebSettings, state_dir: Path) -> tuple[str, str | None]:
    """Where ``status`` asks the web app (its listen address and port, https when it
    serves TLS) and the CA file its certificate is verified by (None: the system's).

    An app listening on every interface is asked on loopback; over TLS, by the public
    URL's host instead, the name its certificate is issued for."""
    host = web.host
    if host in _ANY:
        host = (urlsplit(web.public_url).hostname or "localhost") if web.tls else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    if not web.tls:
        return f"http://{host}:{web.port}", None
    if web.tls_cert_path is not None:
        return f"https://{host}:{web.port}", None
    from stream_processor.runtime.layout import StateLayout
    from stream_processor.runtime.tls import TlsFiles

    return f"https://{host}:{web.port}", str(TlsFiles.of(StateLayout(state_dir)).ca_cert)


def _targets(window_s: float):  # type: ignore[no-untyped-def]
    from stream_processor.bridge.settings import BridgeSettings
    from stream_processor.erasure.settings import ErasureSettings
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.runtime.settings import BrokerSettings, Topics
    from stream_processor.runtime.status import Targets
    from stream_processor.store.settings import StoreSettings
    from stream_processor.web.settings import WebSettings

    brokers, topics, processor = BrokerSettings(), Topics(), ProcessorSettings()
    store = StoreSettings()
    web = WebSettings()
    erasure_group = ErasureSettings().app_id or f"{processor.app_id}-erasure"
    postgres = None
    if store.store == "postgres" and store.postgres_dsn is None:
        postgres = (brokers.host, store.postgres_port)
    return Targets(
        kafka_bootstrap=brokers.kafka_bootstrap,
        mqtt=(brokers.host, brokers.mqtt_port),
        web_url=web_probe(web, brokers.state_dir)[0],
        groups={
            "bridges": f"{BridgeSettings().share_group}-commands",
            "processor workers": f"{processor.app_id}.raw",
            "erasure worker": erasure_group,
        },
        raw_topic=topics.raw,
        dlq_topic=topics.dlq,
        lag_group=f"{processor.app_id}.raw",
        postgres=postgres,
        dlq_window_s=window_s,
        kafka_nodes=brokers.kafka_nodes,
    )


def _apps() -> list[str]:
    """The Faust app ids whose own topics (changelogs, leader topics) are checked too."""
    from stream_processor.erasure.settings import ErasureSettings
    from stream_processor.processor.settings import ProcessorSettings

    processor = ProcessorSettings().app_id
    return [processor, ErasureSettings().app_id or f"{processor}-erasure"]


#: What each kind of replication problem asks of the operator (docs/operations.md).
_FIX = {
    "replicas": "fix: facegate stack topics --add-replicas (docs/operations.md,"
    " 'Topics with too few replicas')",
    "sync": "fix: start the broker that is down, or see why it falls behind"
    " (docs/operations.md, 'What to watch')",
    "unknown": "is every broker reachable and the status role's ACLs applied?"
    " (docs/operations.md, 'What to watch')",
}


@click.command()
@json_option
@click.option(
    "--window", "window_min", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
    help="minutes over which the dead-letter rate is counted",
)  # fmt: skip
def status(as_json: bool, window_min: float) -> None:
    """Brokers, bridges, workers, erasure worker, web, consumer lag and dead-letter rate.

    Exits 1 when a part is down (for scripts and monitoring).
    """
    from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
    from stream_processor.runtime.settings import BrokerSettings
    from stream_processor.runtime.status import assess, http_error, observe
    from stream_processor.runtime.status_probe import KafkaPythonProbe
    from stream_processor.web.settings import WebSettings

    targets = _targets(window_min * 60)
    brokers = BrokerSettings()
    login = kafka_python_auth(brokers, Role.STATUS)
    _, cafile = web_probe(WebSettings(), brokers.state_dir)
    from stream_processor.runtime.replication import describe_replication
    from stream_processor.runtime.settings import Topics

    seen = observe(
        targets,
        lambda b: KafkaPythonProbe(b, auth=login),
        http=lambda url: http_error(url, cafile=cafile),
        replication=lambda: describe_replication(
            targets.kafka_bootstrap, Topics(), _apps(), login
        ),
    )
    report = assess(targets, seen)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for part in report.parts:
            click.echo(f"{part.name:<18} {'up' if part.up else 'DOWN':<5} {part.detail}")
        lag = "unknown" if report.consumer_lag is None else f"{report.consumer_lag} events"
        rate = report.dead_letters_per_minute
        dlq = "unknown" if rate is None else f"{rate:g}/min over the last {window_min:g} min"
        click.echo(f"{'consumer lag':<18}       {lag} (raw topic, processor group)")
        click.echo(f"{'dead letters':<18}       {dlq}")
        for problem in report.replication:
            click.echo(f"problem: topic {problem.topic}: {problem.detail}; {_FIX[problem.kind]}")
    if not report.ok:
        raise SystemExit(1)
