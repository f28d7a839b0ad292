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
    kafka_libs: Path = Field(
        REPO_ROOT / "deploy" / "kafka" / "target" / "libs",
        description="folder of Kafka jars resolved by deploy/kafka/pom.xml",
    )
    kafka_heap: str = Field("-Xms256m -Xmx768m", description="JVM heap flags for the broker")
    start_timeout_s: float = Field(90.0, gt=0, description="how long to wait for readiness")

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackSettings:
        ports = [self.mqtt_port, self.kafka_port, self.kafka_controller_port]
        if self.mqtt_tls_port:
            ports.append(self.mqtt_tls_port)
        if len(set(ports)) != len(ports):
            raise ValueError(f"mqtt, kafka and controller ports must differ, got {ports}")
        return self
