"""``facegate processor worker``: one Faust worker (composition root)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import click

from stream_processor.processor.settings import ProcessorSettings
from stream_processor.settings import StackSettings
from stream_processor.stack.layout import StateLayout
from stream_processor.store.base import EventStore
from stream_processor.store.settings import StoreSettings


def store_factory(
    stack: StackSettings, settings: ProcessorSettings, store: StoreSettings | None = None
) -> tuple[Callable[[], EventStore], str]:
    """The configured store (``FACEGATE_STORE``) as a factory, and where it is."""
    store = store or StoreSettings()
    if store.store == "postgres":
        from stream_processor.stack.postgres import Postgres
        from stream_processor.store.postgres import PostgresEventStore

        dsn = Postgres(stack, store).dsn()
        where = f"postgres db {store.postgres_db}" if store.postgres_dsn is None else "postgres"
        # partials, not lambdas: the store writer process receives the factory pickled
        return partial(PostgresEventStore, dsn), where
    from stream_processor.store.sqlite import SqliteEventStore

    path = settings.store_path or StateLayout(stack.state_dir).sqlite_path
    return partial(SqliteEventStore, path), str(path)


@click.group()
def processor() -> None:
    """Faust stream processors: enforce policy, store what is allowed."""


@processor.command()
@click.option("--worker-name", default=None, help="names this worker's data folder")
def worker(worker_name: str | None) -> None:
    """Run one worker of the consumer group until SIGTERM/SIGINT."""
    import faust

    from stream_processor.processor.app import create_app
    from stream_processor.settings import Topics

    stack = StackSettings()
    settings = ProcessorSettings(worker_name=worker_name) if worker_name else ProcessorSettings()
    factory, where = store_factory(stack, settings)
    factory().close()  # create/migrate the schema before consuming anything
    app = create_app(stack, settings, Topics(), factory)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr="127.0.0.1")
    click.echo(f"processor {settings.worker_name}: {stack.kafka_bootstrap} → {where}")
    faust.Worker(
        app, loglevel="WARNING", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()
