"""The whole local stack: Mosquitto + Kafka + topics, up/down/status, idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from stream_processor.bridge.session import ensure_bridge_session
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import ensure_topics, topic_specs
from stream_processor.stack.kafka import Kafka
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.postgres import Postgres, PostgresStatus
from stream_processor.stack.procs import BrokerStatus
from stream_processor.stack.settings import StackSettings
from stream_processor.store.settings import StoreSettings


@dataclass(frozen=True)
class StackStatus:
    mosquitto: BrokerStatus
    kafka: BrokerStatus
    #: Only when the stack runs its own PostgreSQL (FACEGATE_STORE=postgres).
    postgres: PostgresStatus | None = None

    @property
    def up(self) -> bool:
        pg_ok = self.postgres is None or self.postgres.running
        return self.mosquitto.running and self.kafka.running and pg_ok


class Stack:
    def __init__(self, settings: StackSettings, topics: Topics | None = None) -> None:
        self.settings = settings
        self.topics = topics or Topics()
        self.layout = StateLayout(settings.state_dir)
        self.mosquitto = Mosquitto(settings)
        self.kafka = Kafka(settings)
        self.store = StoreSettings()
        self.postgres = Postgres(settings, self.store)

    @property
    def runs_postgres(self) -> bool:
        return self.store.store == "postgres" and self.store.postgres_dsn is None

    def up(self) -> StackStatus:
        self.layout.ensure()
        self.mosquitto.up()
        self.kafka.up()
        if self.runs_postgres:
            self.postgres.up()
        ensure_topics(self.settings.kafka_bootstrap, topic_specs(self.topics))
        ensure_bridge_session(
            self.settings.host,
            self.settings.mqtt_port,
            self.mosquitto.accounts.bridge_credentials(),
        )
        return self.status()

    def down(self) -> StackStatus:
        self.postgres.down()  # a no-op unless it runs
        self.kafka.down()
        self.mosquitto.down()
        return self.status()

    def status(self) -> StackStatus:
        pg = self.postgres.status()
        return StackStatus(
            self.mosquitto.status(),
            self.kafka.status(),
            pg if (pg.running or self.runs_postgres) else None,
        )
