"""``facegate edge run``: the agent's composition root. Everything concrete is chosen here."""

from __future__ import annotations

import logging
import signal
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from edge_agent.access.gate import LoggingActuator
from edge_agent.agent import EdgeAgent
from edge_agent.announce import announce
from edge_agent.commands.handler import CommandHandler
from edge_agent.compose import build_credentials, build_recognizer, build_source, open_gallery
from edge_agent.config import EdgeConfig
from edge_agent.gallery.credentials import CredentialHasher
from edge_agent.health import make_server, serve_in_background
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.pseudonym import load_site_secret
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import DeviceConnection
from edge_agent.uplink.status import StatusReporter

log = logging.getLogger("edge.agent")


def run_agent(config: EdgeConfig, exit_when_done: bool = False, drain_timeout: float = 60) -> int:
    """Run until signalled (or, with ``exit_when_done``, until the source ends and the
    outbox drained); returns the exit status. An ``EdgeError`` at start-up (a model,
    the gallery key, the device file) is raised for the entry point to report."""
    conn = DeviceConnection.load(config.device_config)
    metrics = EdgeMetrics()
    # Refuses to start without its site's secret (ConfigError names the way to get it).
    secret = load_site_secret(config.site_secret, conn.identity.tenant, conn.identity.site)
    outbox = SqliteOutbox(config.outbox.path, max_rows=config.outbox.max_rows)
    recognizer = build_recognizer(config, metrics) if config.video.kind != "none" else None
    if recognizer is not None:
        metrics.models.info(
            {"detector": recognizer.detector.model_id, "embedder": recognizer.embedder.model_id}
        )
    agent = EdgeAgent(
        identity=conn.identity,
        purpose=config.purpose,
        gallery=open_gallery(config),
        hasher=CredentialHasher(secret.key),
        outbox=outbox,
        metrics=metrics,
        actuator=LoggingActuator(),
        recognizer=recognizer,
        source=build_source(config.video, metrics),
        credentials=build_credentials(config),
        outbox_max_age_s=config.outbox.max_age_s,
        purge_interval_s=config.outbox.purge_interval_s,
        gallery_reload_s=config.gallery.reload_s,
    )
    agent.reload_gallery(force=True)
    handler = CommandHandler(
        conn.identity, config.purpose, agent.gallery, outbox, metrics,
        on_removed=agent.on_subject_removed,
    )
    def on_command(payload: bytes) -> None:
        handler.handle_payload(payload)

    publisher = OutboxPublisher(outbox, conn.identity, conn.mqtt, on_command=on_command)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server, announced = _serve_http(config, metrics, agent)
    pub_stop = threading.Event()
    pub_thread = threading.Thread(target=publisher.run, args=(pub_stop,), name="uplink")
    pub_thread.start()
    log.info("agent started: device %s, video %s", conn.identity.username, config.video.kind)
    main = threading.Thread(
        target=agent.run, args=(stop, lambda: publisher.connected), name="agent", daemon=True
    )
    main.start()
    models = [recognizer.detector.model_id, recognizer.embedder.model_id] if recognizer else []
    status = StatusReporter(conn.identity, outbox, publisher.publish_status, models, metrics)
    try:
        while not stop.is_set():
            status.tick()
            if exit_when_done and (agent.source is None or agent.source_done):
                deadline = time.monotonic() + drain_timeout
                while outbox.depth() and time.monotonic() < deadline and not stop.is_set():
                    time.sleep(0.1)
                stop.set()
            stop.wait(0.2)
    finally:
        stop.set()
        main.join(10)
        agent.housekeeping(publisher.connected)
        pub_stop.set()
        pub_thread.join(10)
        if server is not None:
            server.shutdown()
        if announced is not None:  # a clean stop: no longer a target to watch
            announced.unlink(missing_ok=True)
        left = outbox.depth()
        outbox.close()
        log.info("agent stopped; %d rows still queued (sent on next start)", left)
    return 0


def _serve_http(
    config: EdgeConfig, metrics: EdgeMetrics, agent: EdgeAgent
) -> tuple[ThreadingHTTPServer | None, Path | None]:
    """/metrics and /healthz when enabled, announced to ``http.announce_dir`` if set."""
    if not config.http.enabled:
        return None, None
    server = make_server(
        config.http.host, config.http.port, metrics.registry,
        lambda: agent.health(config.http.max_frame_age_s),
    )
    serve_in_background(server)
    log.info("metrics and health on http://%s:%d", config.http.host, server.server_port)
    announced = None
    if config.http.announce_dir is not None:
        announced = announce(config.http.announce_dir, config.http.host, server.server_port)
    return server, announced
