"""The shared device registry (rights database, both backends): written by device
registration beside the broker account, kept after removal, read from any host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.rights.db import connect_rights_db
from stream_processor.rights.settings import RightsDbSettings
from stream_processor.runtime.accounts import AccountBook
from stream_processor.runtime.devices import register_device, unregister_device
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.registry import DeviceRegistry
from stream_processor.runtime.settings import BrokerSettings

GATE = DeviceIdentity("acme", "north", "gate-1", "cam-1")
OTHER = DeviceIdentity("acme", "north", "gate-2", "cam-2")


class AccountsOnly:
    """``BrokerAccounts`` without Mosquitto: the real account book, reloads ignored."""

    def __init__(self, state: Path) -> None:
        self.accounts = AccountBook(StateLayout(state))
        self.tls_hostnames = ["127.0.0.1"]

    def reload(self) -> None:
        pass


def test_register_remove_and_reregister_keep_one_row_and_the_history(rights_db: Any) -> None:
    now = [1_700_000_000.0]
    reg = DeviceRegistry(rights_db, clock=lambda: now[0])
    assert reg.register(GATE, "os:ops") is True
    now[0] += 10
    assert reg.register(GATE, "os:mallory") is False  # a rotation is no new registration
    (rec,) = reg.records("acme")
    assert (rec.registered_at_ms, rec.registered_by, rec.active) == (
        1_700_000_000_000,
        "os:ops",
        True,
    )
    assert reg.remove(GATE, "os:ops") is True and reg.remove(GATE, "os:ops") is False
    assert reg.active() == [] and reg.roster() == [GATE]  # removed, still owed acknowledgements
    (rec,) = reg.records()
    assert rec.removed_at_ms == 1_700_000_010_000 and rec.removed_by == "os:ops"
    now[0] += 10
    assert reg.register(GATE, "os:ops") is True
    assert reg.active() == [GATE] and reg.records()[0].removed_at_ms is None
    assert reg.records("other-firm") == []


def test_devices_add_and_remove_write_the_deployments_registry(
    tmp_path: Path, rights_env: dict[str, str], monkeypatch: Any
) -> None:
    for k, v in rights_env.items():
        monkeypatch.setenv(k, v)
    s = BrokerSettings(state_dir=tmp_path, mqtt_port=18830, mqtt_tls_port=0)
    broker = AccountsOnly(tmp_path)
    register_device(s, GATE, broker=broker, open_session=None, by="os:ops")
    register_device(s, OTHER, broker=broker, open_session=None)
    assert unregister_device(s, OTHER, broker=broker, by="os:ops") is True
    db = connect_rights_db(tmp_path, RightsDbSettings())
    try:
        reg = DeviceRegistry(db)
        assert reg.active() == [GATE] and reg.roster() == [GATE, OTHER]
        assert [r.registered_by for r in reg.records()][0] == "os:ops"
        assert reg.records()[1].registered_by.startswith("os:")
    finally:
        db.close()
    # A second removal finds neither an account nor an active registration.
    assert unregister_device(s, OTHER, broker=broker) is False
