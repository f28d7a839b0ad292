"""Settings of the local broker stack (env prefix ``FACEGATE_``): the client
settings every process uses, plus what only starting the brokers needs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from stream_processor.runtime.settings import BrokerSettings

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class StackSettings(BrokerSettings):
    """Where the local brokers run and keep their state."""

    mqtt_tls_bind: str | None = Field(
        None,
        description="address the TLS listener binds; None = FACEGATE_HOST (loopback)."
        " Set 0.0.0.0 (and FACEGATE_MQTT_TLS_HOSTNAMES) where real devices connect",
    )
    kafka_controller_port: int = Field(9093, ge=1, le=65535, description="KRaft controller")
    kafka_nodes: int = Field(
        1,
        ge=1,
        le=9,
        description="KRaft nodes (broker+controller each) the local stack runs; 3 gives"
        " topics three replicas and min.insync.replicas=2",
    )
    kafka_node_ports: list[int] = Field(
        default_factory=list,
        description="client and controller port of nodes 2..N, in pairs (JSON list);"
        " empty = FACEGATE_KAFKA_PORT and FACEGATE_KAFKA_CONTROLLER_PORT + 10 per node",
    )
    kafka_libs: Path = Field(
        REPO_ROOT / "deploy" / "kafka" / "target" / "libs",
        description="folder of Kafka jars resolved by deploy/kafka/pom.xml",
    )
    kafka_heap: str | None = Field(
        None,
        description="JVM heap flags of each Kafka node, e.g. '-Xms1g -Xmx1g'; None = a"
        " fixed heap sized by the node count (stack/kafka_jvm.py)",
    )
    start_timeout_s: float = Field(90.0, gt=0, description="how long to wait for readiness")

    def kafka_node_addresses(self) -> list[tuple[int, int]]:
        """(client port, controller port) of nodes 1..N."""
        pairs = [(self.kafka_port, self.kafka_controller_port)]
        given = self.kafka_node_ports
        for i in range(1, self.kafka_nodes):
            if given:
                pairs.append((given[2 * i - 2], given[2 * i - 1]))
            else:
                pairs.append((self.kafka_port + 10 * i, self.kafka_controller_port + 10 * i))
        return pairs

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackSettings:
        if self.kafka_node_ports and len(self.kafka_node_ports) != 2 * (self.kafka_nodes - 1):
            raise ValueError(
                f"kafka_node_ports needs {2 * (self.kafka_nodes - 1)} ports (client and"
                f" controller of nodes 2..{self.kafka_nodes}), got {len(self.kafka_node_ports)}"
            )
        if self.kafka_nodes > 1 and self.kafka_bootstrap == f"{self.host}:{self.kafka_port}":
            # Clients then reach the cluster while any one node is down.
            self.kafka_bootstrap = ",".join(
                f"{self.host}:{p}" for p, _ in self.kafka_node_addresses()
            )
        ports = [self.mqtt_port, *(p for pair in self.kafka_node_addresses() for p in pair)]
        if self.mqtt_tls_port:
            ports.append(self.mqtt_tls_port)
        if len(set(ports)) != len(ports):
            raise ValueError(f"mqtt, kafka and controller ports must differ, got {ports}")
        return self
