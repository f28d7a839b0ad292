"""The web app's TLS context: the project CA's certificate, or the operator's own."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry

from stream_processor.errors import ConfigError
from stream_processor.runtime.certs import register_certificate_expiry
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.tls import ensure_web_tls
from stream_processor.web.settings import WebSettings

#: Listen-on-every-interface addresses name no host a certificate could be for.
_ANY = ("0.0.0.0", "::")  # noqa: S104 - compared against, never bound


def server_context(
    settings: WebSettings,
    state_dir: Path,
    bind_host: str,
    registry: CollectorRegistry | None = None,
) -> ssl.SSLContext:
    """A TLS 1.2+ server context; the project CA issues a certificate when none is given.

    With a ``registry``, the certificate's expiry is exported as
    ``facegate_tls_certificate_not_after_seconds{cert="web"}``, read from the file at
    each scrape: a renewed file shows, though the server keeps the loaded one until
    restarted, which is what the expiry alert is for."""
    if settings.tls_cert_path is not None and settings.tls_key_path is not None:
        cert, key = settings.tls_cert_path, settings.tls_key_path
    else:
        hosts = [urlsplit(settings.public_url).hostname or bind_host, bind_host]
        named = [h for h in hosts if h and h not in _ANY]
        cert, key = ensure_web_tls(StateLayout(state_dir), named or ["localhost"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"web TLS: cannot load {cert} with {key}: {exc}") from exc
    if registry is not None:
        register_certificate_expiry(registry, {"web": cert})
    return context
