"""``facegate status``: the whole pipeline on one screen; exit 1 when a part is down."""

from __future__ import annotations

import json

import click

from stream_processor.cli.options import json_option


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
        web_url=f"http://{web.host}:{web.port}",
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
    )


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
    from stream_processor.runtime.status import KafkaPythonProbe, assess, observe

    targets = _targets(window_min * 60)
    login = kafka_python_auth(BrokerSettings(), Role.STATUS)
    report = assess(targets, observe(targets, lambda b: KafkaPythonProbe(b, auth=login)))
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
    if not report.ok:
        raise SystemExit(1)
