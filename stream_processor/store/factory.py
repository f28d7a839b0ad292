"""The configured event store (``FACEGATE_STORE``) for any process that opens it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from stream_processor.errors import ConfigError
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.settings import BrokerSettings
from stream_processor.store.base import EventStore
from stream_processor.store.settings import StoreSettings


def postgres_password_file(broker: BrokerSettings, store: StoreSettings) -> Path:
    """Where the local PostgreSQL role's generated password is kept (0600)."""
    return StateLayout(broker.state_dir).secrets / "postgres" / f"{store.postgres_user}.password"


def store_dsn(broker: BrokerSettings, store: StoreSettings, db: str | None = None) -> str:
    """``FACEGATE_POSTGRES_DSN`` if set, else the local stack's PostgreSQL (``db`` or
    the configured database) with the password ``stack up`` generated."""
    if store.postgres_dsn is not None and db is None:
        return store.postgres_dsn.get_secret_value()
    path = postgres_password_file(broker, store)
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no PostgreSQL password at {path}: run 'facegate stack up' with"
            " FACEGATE_STORE=postgres, or set FACEGATE_POSTGRES_DSN"
        ) from None
    return (
        f"host={broker.host} port={store.postgres_port} "
        f"dbname={db or store.postgres_db} user={store.postgres_user} "
        f"password={password} connect_timeout=10"
    )


def store_factory(
    broker: BrokerSettings, store_path: Path | None = None, store: StoreSettings | None = None
) -> tuple[Callable[[], EventStore], str]:
    """The configured store (``FACEGATE_STORE``) as a factory, and where it is.

    ``store_path`` overrides the SQLite file (``FACEGATE_PROCESSOR_STORE_PATH``).
    """
    store = store or StoreSettings()
    if store.store == "postgres":
        from stream_processor.store.postgres import PostgresEventStore

        dsn = store_dsn(broker, store)
        where = f"postgres db {store.postgres_db}" if store.postgres_dsn is None else "postgres"
        # partials, not lambdas: the store writer process receives the factory pickled
        return partial(PostgresEventStore, dsn), where
    from stream_processor.store.sqlite import SqliteEventStore

    path = store_path or StateLayout(broker.state_dir).sqlite_path
    return partial(SqliteEventStore, path, secure_delete=store.sqlite_secure_delete), str(path)
