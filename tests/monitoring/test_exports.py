"""The gauges the alert rules need: consumer lag per partition, certificate expiry,
and the file_sd announcements Prometheus discovers processes by."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry

from edge_agent.announce import announce as edge_announce
from stream_processor.processor.ingest import KafkaInput
from stream_processor.processor.metrics import consumer_lag_gauge
from stream_processor.runtime.certs import broker_certificates, register_certificate_expiry
from stream_processor.runtime.targets import announce, target_entry, targets_dir

pytestmark = pytest.mark.unit


class _TP:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


class _Consumer:
    """The four aiokafka calls KafkaInput uses for lag (a pure unit: no broker)."""

    def __init__(self, high: dict[int, int | None], pos: dict[int, int]) -> None:
        self.high, self.pos = high, pos
        self.tps = {p: _TP("raw", p) for p in high}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        return {}

    def assignment(self) -> set[_TP]:
        return set(self.tps.values())

    def highwater(self, tp: _TP) -> int | None:
        return self.high[tp.partition]

    async def position(self, tp: _TP) -> int:
        return self.pos[tp.partition]


def _lag(registry: CollectorRegistry, partition: str) -> float | None:
    return registry.get_sample_value(
        "facegate_processor_consumer_lag", {"topic": "raw", "partition": partition}
    )


def test_lag_per_assigned_partition_and_gone_after_a_rebalance() -> None:
    registry = CollectorRegistry()
    consumer = _Consumer({0: 120, 1: 7, 2: None}, {0: 20, 1: 7, 2: 0})
    source = KafkaInput(consumer, consumer_lag_gauge(registry))
    asyncio.run(source.fetch(0, 10))
    assert _lag(registry, "0") == 100
    assert _lag(registry, "1") == 0
    assert _lag(registry, "2") is None  # no watermark known yet: no guess
    del consumer.tps[0]  # a rebalance moved partition 0 to another worker
    source._lag_at = float("-inf")
    asyncio.run(source.fetch(0, 10))
    assert _lag(registry, "0") is None
    assert _lag(registry, "1") == 0


def _cert(path: Path, days: int) -> float:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return (now + dt.timedelta(days=days)).timestamp()


def test_certificate_not_after_is_read_at_each_scrape(tmp_path: Path) -> None:
    tls = tmp_path / "secrets" / "tls"
    tls.mkdir(parents=True)
    server_until = _cert(tls / "server.crt", 10)
    ca_until = _cert(tls / "ca.crt", 3650)
    registry = CollectorRegistry()
    register_certificate_expiry(registry, broker_certificates(tmp_path))

    def value(role: str) -> float | None:
        return registry.get_sample_value(
            "facegate_tls_certificate_not_after_seconds", {"cert": role}
        )

    assert value("mqtt_server") == server_until
    assert value("mqtt_ca") == ca_until
    renewed = _cert(tls / "server.crt", 397)  # renewal seen without a restart
    assert value("mqtt_server") == renewed
    (tls / "server.crt").write_text("not a certificate")
    assert value("mqtt_server") is None  # unreadable: absent, not a made-up date


def test_announcements_are_file_sd_entries_with_a_known_job(tmp_path: Path) -> None:
    path = announce(tmp_path, "facegate-processor", 9321, "0.0.0.0", "worker 1/../x")
    assert path.parent == targets_dir(tmp_path)
    assert "/" not in path.name.removeprefix("facegate-processor-")
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:9321"],
         "labels": {"job": "facegate-processor", "facegate_instance": "worker 1/../x"}}
    ]
    edge = edge_announce(targets_dir(tmp_path), "127.0.0.1", 9108)
    assert json.loads(edge.read_text()) == target_entry("facegate-edge", "127.0.0.1:9108")
    with pytest.raises(ValueError, match="unknown job"):
        target_entry("resident-42", "127.0.0.1:1")
