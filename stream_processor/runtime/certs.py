"""``facegate_tls_certificate_not_after_seconds{cert}``: when each certificate a
process relies on expires, read from the file at every scrape (a renewed file is
seen without a restart). ``cert`` is a fixed role name, never a subject."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from cryptography import x509
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_processor.runtime.layout import StateLayout

log = logging.getLogger(__name__)


def not_after(path: Path) -> float | None:
    """The first certificate's notAfter as Unix seconds; None if unreadable."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        log.warning("certificate %s not readable: %s", path, exc)
        return None
    return cert.not_valid_after_utc.timestamp()


class CertificateExpiry(Collector):
    def __init__(self, files: Mapping[str, Path]) -> None:
        self._files = dict(files)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "facegate_tls_certificate_not_after_seconds",
            "notAfter of each certificate this process relies on (Unix seconds)",
            labels=["cert"],
        )
        for role, path in sorted(self._files.items()):
            when = not_after(path)
            if when is not None:
                family.add_metric([role], when)
        yield family


def broker_certificates(state_dir: Path, ca_file: Path | None = None) -> dict[str, Path]:
    """The MQTT broker's CA and server certificate where this host holds them (the
    local stack's ``<state>/secrets/tls``), and the CA a client was given."""
    tls = StateLayout(state_dir).secrets / "tls"
    files = {"mqtt_ca": tls / "ca.crt", "mqtt_server": tls / "server.crt"}
    found = {role: path for role, path in files.items() if path.exists()}
    if ca_file is not None:
        found["mqtt_ca"] = ca_file
    return found


def register_certificate_expiry(
    registry: CollectorRegistry, files: Mapping[str, Path]
) -> CertificateExpiry | None:
    if not files:
        return None
    collector = CertificateExpiry(files)
    registry.register(collector)
    return collector
