"""The project's own certificate authority and the broker's server certificate.

Generated once under ``<state>/secrets/tls/`` (keys 0600) and kept: devices
are given ``ca.crt`` and verify the broker against it. The server
certificate is re-issued when it nears expiry or no longer names every host
the broker is reached by (``FACEGATE_HOST`` and ``FACEGATE_MQTT_TLS_HOSTNAMES``);
the CA is never replaced while its key exists, so device configs stay valid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stream_processor.runtime.layout import StateLayout, write_private

CA_DAYS = 3650
SERVER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def of(cls, layout: StateLayout) -> TlsFiles:
        d = layout.secrets / "tls"
        return cls(d / "ca.crt", d / "ca.key", d / "server.crt", d / "server.key")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _san(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _make_ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facegate local CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(files.ca_key, _key_pem(key))
    files.ca_cert.write_text(_cert_pem(cert))
    return cert, key


def _load_ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    if not (files.ca_cert.exists() and files.ca_key.exists()):
        return None
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    return cert, key


def _server_ok(cert_path: Path, key_path: Path, ca: x509.Certificate, hosts: list[str]) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.issuer != ca.subject or cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(name in list(san) for name in _san(hosts))


def _ensure_server(files: TlsFiles, cert_path: Path, key_path: Path, hosts: list[str]) -> None:
    """A CA-signed server certificate for ``hosts`` at ``cert_path``, unless a valid one is."""
    files.ca_cert.parent.mkdir(parents=True, exist_ok=True)
    loaded = _load_ca(files)
    ca_cert, ca_key = loaded if loaded is not None else _make_ca(files)
    if _server_ok(cert_path, key_path, ca_cert, hosts):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(key_path, _key_pem(key))
    cert_path.write_text(_cert_pem(cert))


def ensure_tls(layout: StateLayout, hosts: list[str]) -> TlsFiles:
    """Create the CA and a server certificate for ``hosts`` if missing or stale. Idempotent."""
    files = TlsFiles.of(layout)
    _ensure_server(files, files.server_cert, files.server_key, hosts)
    return files


def ensure_web_tls(layout: StateLayout, hosts: list[str]) -> tuple[Path, Path]:
    """The web app's own certificate and key from the project CA (apart from the broker's,
    so each is issued for the names it is reached by). Idempotent."""
    files = TlsFiles.of(layout)
    cert, key = files.ca_cert.parent / "web.crt", files.ca_cert.parent / "web.key"
    _ensure_server(files, cert, key, hosts)
    return cert, key
