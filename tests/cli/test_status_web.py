"""``facegate status`` asks the web app where its settings say it listens: the port, the
listen address (loopback for every-interface), and over https, verified by the project
CA, when the app serves TLS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stream_processor.cli.status import web_probe
from stream_processor.web.settings import WebSettings
from tests.conftest import FACEGATE, free_ports, make_state_dir

STATE = Path("/srv/facegate-state")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("settings", "url"),
    [
        ({}, "http://127.0.0.1:8080"),
        ({"port": 9443, "host": "10.1.2.3"}, "http://10.1.2.3:9443"),
        ({"host": "0.0.0.0", "port": 8181}, "http://127.0.0.1:8181"),
        ({"host": "::1", "port": 8181}, "http://[::1]:8181"),
        ({"tls": True, "port": 8443}, "https://127.0.0.1:8443"),
        # Every interface over TLS: the name the project CA's certificate is issued for.
        ({"tls": True, "host": "0.0.0.0", "public_url": "https://gates.example.org/"},
         "https://gates.example.org:8080"),
    ],
)  # fmt: skip
def test_the_probe_url_follows_the_web_settings(settings: dict[str, object], url: str) -> None:
    assert web_probe(WebSettings(**settings), STATE)[0] == url  # type: ignore[arg-type]


@pytest.mark.unit
def test_tls_is_verified_by_the_project_ca_unless_the_operator_brings_a_certificate() -> None:
    assert web_probe(WebSettings(), STATE)[1] is None
    assert web_probe(WebSettings(tls=True), STATE)[1] == str(STATE / "secrets/tls/ca.crt")
    own = WebSettings(tls=True, tls_cert_path=Path("/etc/c.pem"), tls_key_path=Path("/etc/k"))
    assert web_probe(own, STATE)[1] is None  # the system's CAs


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server hook
        ok = self.path == "/healthz"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def state_dir() -> Iterator[Path]:
    from stream_processor.runtime.kafka_auth import ensure_passwords

    path = make_state_dir("facegate-status-web-")
    # The Kafka logins a 'stack up' makes (auth is on by default): status then probes
    # the brokers that are not running and reports them down, the web app up.
    ensure_passwords(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.component
def test_status_finds_a_tls_web_app_on_its_configured_port(state_dir: Path) -> None:
    """Over HTTPS with the project CA's certificate, on a port that is not 8080: up."""
    from stream_processor.web.tls import server_context

    web_port, kafka, mqtt = free_ports(3)
    settings = WebSettings(tls=True, port=web_port)
    server = ThreadingHTTPServer(("127.0.0.1", web_port), _Health)
    server.socket = server_context(settings, state_dir, "127.0.0.1").wrap_socket(
        server.socket, server_side=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")},
        "FACEGATE_STATE_DIR": str(state_dir), "FACEGATE_WEB_TLS": "true",
        "FACEGATE_WEB_PORT": str(web_port), "FACEGATE_KAFKA_PORT": str(kafka),
        "FACEGATE_MQTT_PORT": str(mqtt),
    }  # fmt: skip
    try:
        done = subprocess.run([FACEGATE, "status", "--json"], env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1, done.stderr  # no brokers here: those parts are down
    parts = {p["name"]: p for p in json.loads(done.stdout)["parts"]}
    assert parts["web"]["up"], parts["web"]
    assert parts["web"]["detail"] == f"https://127.0.0.1:{web_port}"
