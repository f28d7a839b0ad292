"""The web app served over TLS exports its own certificate's expiry,
``facegate_tls_certificate_not_after_seconds{cert="web"}``, read from the file at
each scrape (so a renewed certificate shows), for the certificate-expiry alert."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client import CollectorRegistry

from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.tls import ensure_web_tls
from stream_processor.web.settings import WebSettings
from stream_processor.web.tls import server_context

pytestmark = pytest.mark.unit

METRIC = "facegate_tls_certificate_not_after_seconds"


def _not_after(path: Path) -> float:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.timestamp()


def test_the_project_ca_certificate_expiry_is_exported(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    settings = WebSettings(tls=True, public_url="https://console.example.org")
    server_context(settings, tmp_path, "127.0.0.1", registry)
    cert = tmp_path / "secrets" / "tls" / "web.crt"
    assert registry.get_sample_value(METRIC, {"cert": "web"}) == _not_after(cert)
    # Only the fixed role name: no subject, host or path as a label value.
    [family] = [f for f in registry.collect() if f.name == METRIC]
    assert [s.labels for s in family.samples] == [{"cert": "web"}]


def test_an_operator_certificate_is_read_again_at_each_scrape(tmp_path: Path) -> None:
    """The operator's renewed file (same path) is what the next scrape reports."""
    first = ensure_web_tls(StateLayout(tmp_path / "a"), ["console.example.org"])
    cert, key = tmp_path / "web.crt", tmp_path / "web.key"
    shutil.copyfile(first[0], cert)
    shutil.copyfile(first[1], key)
    registry = CollectorRegistry()
    settings = WebSettings(tls=True, tls_cert_path=cert, tls_key_path=key)
    server_context(settings, tmp_path / "state", "127.0.0.1", registry)
    assert registry.get_sample_value(METRIC, {"cert": "web"}) == _not_after(first[0])
    cert.write_text("renewal half written")  # unreadable: no sample, no failed scrape
    assert registry.get_sample_value(METRIC, {"cert": "web"}) is None

