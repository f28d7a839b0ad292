"""The whole local stack: Mosquitto + Kafka + topics (+ PostgreSQL, + Prometheus),
up/down/status, idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from stream_processor.bridge.session import ensure_bridge_session
from stream_processor.runtime.kafka_acls import apply_acls
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import ensure_topics, topic_specs, topics_in_force
from stream_processor.stack.broker_config import replication_for
from stream_processor.stack.cluster import ClusterStatus, KafkaCluster
from stream_processor.stack.kafka_auth import ensure_scram_users, stack_acl_plan
from stream_processor.stack.monitoring.prometheus import Prometheus, PrometheusStatus
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.postgres import Postgres, PostgresStatus
from stream_processor.stack.procs import BrokerStatus
from stream_processor.stack.settings import StackSettings
from stream_processor.store.settings import StoreSettings


@dataclass(frozen=True)
class StackStatus:
    mosquitto: BrokerStatus
    kafka: ClusterStatus
    #: Only when the stack runs its own PostgreSQL (FACEGATE_STORE=postgres).
    postgres: PostgresStatus | None = None
    #: Only while the stack runs its Prometheus (``up --with-monitoring``).
    prometheus: PrometheusStatus | None = None

    @property
    def up(self) -> bool:
        pg_ok = self.postgres is None or self.postgres.running
        prom_ok = self.prometheus is None or self.prometheus.ready
        return self.mosquitto.running and self.kafka.running and pg_ok and prom_ok


class Stack:
    def __init__(self, settings: StackSettings, topics: Topics | None = None) -> None:
        self.settings = settings
        self.topics = topics or Topics()
        self.layout = StateLayout(settings.state_dir)
        self.mosquitto = Mosquitto(settings)
        self.kafka = KafkaCluster(settings)
        self.store = StoreSettings()
        self.postgres = Postgres(settings, self.store)
        self.prometheus = Prometheus(settings.state_dir)

    @property
    def runs_postgres(self) -> bool:
        return self.store.store == "postgres" and self.store.postgres_dsn is None

    def up(self, with_monitoring: bool = False) -> StackStatus:
        self.layout.ensure()
        self.mosquitto.up()
        self.kafka.up()
        if self.runs_postgres:
            self.postgres.up()
        bootstrap = self.settings.kafka_bootstrap
        if self.settings.kafka_auth:
            ensure_scram_users(self.settings)
        admin = kafka_python_auth(self.settings, Role.ADMIN)
        # Configs come from the policy in force: an 'up' keeps what 'policy apply' set.
        rf, _ = replication_for(self.settings.kafka_nodes)
        in_force = topics_in_force(bootstrap, self.topics, admin)
        ensure_topics(bootstrap, topic_specs(in_force, rf), rf, admin)
        if self.settings.kafka_auth:
            apply_acls(self.settings, stack_acl_plan(self.topics))
        ensure_bridge_session(
            self.settings.host,
            self.settings.mqtt_port,
            self.mosquitto.accounts.bridge_credentials(),
        )
        if with_monitoring:
            self.prometheus.up()
        return self.status()

    def down(self) -> StackStatus:
        self.prometheus.down()  # a no-op unless it runs
        self.postgres.down()  # a no-op unless it runs
        self.kafka.down()
        self.mosquitto.down()
        return self.status()

    def status(self) -> StackStatus:
        pg = self.postgres.status()
        prom = self.prometheus.status()
        return StackStatus(
            self.mosquitto.status(),
            self.kafka.status(),
            pg if (pg.running or self.runs_postgres) else None,
            prom if prom.running else None,
        )
