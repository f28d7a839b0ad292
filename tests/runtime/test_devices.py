"""The device registry over its broker port: accounts, connection files (0600, the
password only there), TLS with the project CA, rotation and removal."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.errors import ConfigError
from stream_processor.runtime.accounts import AccountBook
from stream_processor.runtime.devices import config_path, register_device, unregister_device
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.settings import BrokerSettings

pytestmark = pytest.mark.unit

GATE = DeviceIdentity("acme", "north", "gate-1", "cam-1")


class RecordingBroker:
    """``BrokerAccounts`` without Mosquitto: the real account book, reloads counted."""

    def __init__(self, state: Path) -> None:
        self.accounts = AccountBook(StateLayout(state))
        self.tls_hostnames = ["127.0.0.1", "localhost"]
        self.reloads = 0
        self.sessions: list[tuple[str, str, str, int]] = []

    def reload(self) -> None:
        self.reloads += 1

    def open_session(self, identity: DeviceIdentity, creds: Any, host: str, port: int) -> None:
        """The session the registry opens (a real broker's is in test_device_session)."""
        self.sessions.append((identity.username, creds.password, host, port))


def register(s: BrokerSettings, broker: RecordingBroker, **kw: Any) -> str:
    return register_device(s, GATE, broker=broker, open_session=broker.open_session, **kw)


def settings(tmp_path: Path, tls_port: int = 0) -> BrokerSettings:
    return BrokerSettings(state_dir=tmp_path, mqtt_port=18830, mqtt_tls_port=tls_port)


def test_plain_registration_writes_a_private_connection_file(tmp_path: Path) -> None:
    s, broker = settings(tmp_path), RecordingBroker(tmp_path)
    path = Path(register(s, broker))
    assert path == config_path(s, GATE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = json.loads(path.read_text())
    creds = broker.accounts.credentials(GATE.username)
    assert config == {
        "tenant": "acme", "site": "north", "gate": "gate-1", "device": "cam-1",
        "mqtt": {"host": "127.0.0.1", "port": 18830, "username": creds.username,
                 "password": creds.password},
    }  # fmt: skip
    assert broker.accounts.devices() == [GATE] and broker.reloads == 1
    assert broker.sessions == [(GATE.username, creds.password, "127.0.0.1", 18830)]
    # The ACL pins the account to its own topics.
    acl = broker.accounts.acl_text()
    assert f"user {GATE.username}\ntopic write facegate/v1/acme/north/gate-1/cam-1/events" in acl


def test_rotation_gives_a_new_password_and_the_old_one_is_gone(tmp_path: Path) -> None:
    s, broker = settings(tmp_path), RecordingBroker(tmp_path)
    first = json.loads(Path(register(s, broker)).read_text())
    again = json.loads(Path(register(s, broker)).read_text())
    rotated = json.loads(Path(register(s, broker, rotate=True)).read_text())
    assert first["mqtt"]["password"] == again["mqtt"]["password"]
    assert rotated["mqtt"]["password"] != first["mqtt"]["password"]


def test_tls_names_the_tls_listener_and_hands_out_the_project_ca(tmp_path: Path) -> None:
    s, broker = settings(tmp_path, tls_port=18883), RecordingBroker(tmp_path)
    config = json.loads(Path(register(s, broker)).read_text())
    assert (config["mqtt"]["host"], config["mqtt"]["port"]) == ("127.0.0.1", 18883)
    ca = Path(config["mqtt"]["ca_file"])
    assert ca.read_bytes() == (tmp_path / "secrets" / "tls" / "ca.crt").read_bytes()
    assert b"PRIVATE KEY" not in ca.read_bytes()


def test_tls_without_a_tls_listener_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    s, broker = settings(tmp_path, tls_port=0), RecordingBroker(tmp_path)
    with pytest.raises(ConfigError, match="FACEGATE_MQTT_TLS_PORT is 0"):
        register(s, broker, tls=True)
    assert not config_path(s, GATE).exists()
    assert broker.accounts.devices() == [] and broker.reloads == 0  # no half-made account


def test_removal_deletes_the_account_its_password_and_its_file(tmp_path: Path) -> None:
    s, broker = settings(tmp_path), RecordingBroker(tmp_path)
    path = Path(register(s, broker))
    password = tmp_path / "secrets" / "mqtt" / f"{GATE.username}.password"
    assert password.exists()
    assert unregister_device(s, GATE, broker=broker) is True
    assert not path.exists() and not password.exists()
    assert broker.accounts.devices() == [] and GATE.username not in broker.accounts.acl_text()
    assert unregister_device(s, GATE, broker=broker) is False
