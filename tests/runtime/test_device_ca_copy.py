"""The project CA that `devices add` copies beside the connection files is replaced in
one step: a gate agent starting on this host loads that copy while another gate is
registered, and a half-written copy kills it before it serves anything (its TLS set-up
fails, so /metrics never comes up: one cause of a monitoring test's 60 s timeout)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path

import pytest

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.runtime.accounts import AccountBook
from stream_processor.runtime.devices import register_device
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.settings import BrokerSettings

pytestmark = pytest.mark.unit

GATE = DeviceIdentity("acme", "north", "gate-1", "cam-1")


class NoBroker:
    """``BrokerAccounts`` without Mosquitto: the real account book, reloads ignored."""

    def __init__(self, state: Path) -> None:
        self.accounts = AccountBook(StateLayout(state))
        self.tls_hostnames = ["127.0.0.1", "localhost"]

    def reload(self) -> None:
        return None


def register(s: BrokerSettings, broker: NoBroker) -> str:
    return register_device(s, GATE, broker=broker, open_session=None)


def test_a_reader_of_the_ca_copy_never_sees_it_half_written(tmp_path: Path) -> None:
    s = BrokerSettings(state_dir=tmp_path, mqtt_port=18830, mqtt_tls_port=18883)
    broker = NoBroker(tmp_path)
    ca = Path(json.loads(Path(register(s, broker)).read_text())["mqtt"]["ca_file"])
    stop, failures, loads = threading.Event(), [], [0]

    def load_like_an_agent() -> None:
        while not stop.is_set():
            try:
                ssl.create_default_context().load_verify_locations(str(ca))
            except (ssl.SSLError, OSError) as exc:
                failures.append(exc)
            loads[0] += 1

    reader = threading.Thread(target=load_like_an_agent)
    reader.start()
    copies, deadline = 0, time.monotonic() + 10
    try:
        while (copies < 20 or loads[0] < 20) and time.monotonic() < deadline:
            register(s, broker)  # re-registering copies the CA again
            copies += 1
    finally:
        stop.set()
        reader.join(30)
    assert copies >= 20 and loads[0] >= 20, (copies, loads[0])  # they overlapped
    assert failures == [], f"{len(failures)} of {loads[0]} loads failed: {failures[:2]}"
    assert [p.name for p in ca.parent.iterdir() if p.name.endswith(".tmp")] == []
