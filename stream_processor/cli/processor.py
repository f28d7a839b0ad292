"""``facegate processor worker``: one Faust worker (composition root)."""

from __future__ import annotations

import click

from stream_processor.processor.settings import ProcessorSettings
from stream_processor.runtime.settings import BrokerSettings
from stream_processor.runtime.targets import announce
from stream_processor.store.factory import store_factory


@click.group()
def processor() -> None:
    """Faust stream processors: enforce policy, store what is allowed."""


@processor.command()
@click.option("--worker-name", default=None, help="names this worker's data folder")
def worker(worker_name: str | None) -> None:
    """Run one worker of the consumer group until SIGTERM/SIGINT."""
    import faust

    from stream_processor.processor.app import create_app
    from stream_processor.runtime.settings import Topics

    stack = BrokerSettings()
    settings = ProcessorSettings(worker_name=worker_name) if worker_name else ProcessorSettings()
    factory, where = store_factory(stack, settings.store_path)
    factory().close()  # create/migrate the schema before consuming anything
    app = create_app(stack, settings, Topics(), factory)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host)
        announce(
            stack.state_dir, "facegate-processor", settings.metrics_port,
            settings.metrics_host, settings.worker_name,
        )
    click.echo(f"processor {settings.worker_name}: {stack.kafka_bootstrap} → {where}")
    from stream_processor.cli.handler import run_faust_worker, worker_log_level

    level = worker_log_level()
    run_faust_worker(faust.Worker(app, loglevel=level, quiet=True, redirect_stdouts=False))


@processor.command("command-key")
@click.option("--create", is_flag=True,
              help="make the key if this host has none (the first host of a deployment)")
def command_key_cmd(create: bool) -> None:
    """Show where the command-id key is and its fingerprint (compare it across hosts).

    Every host of a multi-host deployment (FACEGATE_AUDIT_MODE=topic) must hold the first
    host's <state>/secrets/command-id.key; there the workers never make one. A single host
    makes it on first use.
    """
    from stream_processor.audit.settings import AuditSettings
    from stream_processor.errors import ConfigError
    from stream_processor.runtime.command_key import (
        command_key,
        fingerprint,
        key_path,
        missing_key_message,
    )

    stack = BrokerSettings()
    path = key_path(stack.state_dir)
    existed = path.exists()
    if not existed and not create:
        if AuditSettings().mode == "topic":
            raise ConfigError(missing_key_message(path))
        raise ConfigError(f"no command-id key at {path} yet: the first processor or erasure"
                          " worker makes it, or make it now with --create")  # fmt: skip
    key = command_key(stack.state_dir, create=create)
    made = "made now" if not existed else "present"
    click.echo(f"{path}: {made}, fingerprint {fingerprint(key)}")
