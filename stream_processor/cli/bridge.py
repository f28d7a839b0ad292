"""``facegate bridge run``: one bridge instance (composition root)."""

from __future__ import annotations

import signal
import threading

import click

from stream_processor.bridge.settings import BridgeSettings
from stream_processor.settings import StackSettings, Topics
from stream_processor.stack.accounts import AccountBook
from stream_processor.stack.layout import StateLayout


@click.group()
def bridge() -> None:
    """Move device events from MQTT into Kafka, at least once."""


@bridge.command()
@click.option(
    "--instance", default=None, help="stable instance name (default FACEGATE_BRIDGE_INSTANCE or 1)"
)
def run(instance: str | None) -> None:
    """Run until SIGTERM/SIGINT; unacknowledged messages stay with the broker."""
    from prometheus_client import REGISTRY, start_http_server

    from stream_processor.bridge.service import Bridge

    stack = StackSettings()
    settings = BridgeSettings(instance=instance) if instance else BridgeSettings()
    creds = AccountBook(StateLayout(stack.state_dir)).bridge_credentials()
    service = Bridge(stack, settings, Topics(), creds, registry=REGISTRY)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="127.0.0.1", registry=REGISTRY)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(
        f"bridge {settings.client_id}: MQTT {stack.host}:{stack.mqtt_port}"
        f" → Kafka {stack.kafka_bootstrap}"
    )
    service.run(stop)
