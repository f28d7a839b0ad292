"""Prometheus targets of gate agents on two hosts sharing one rights database: the
devices and their metrics addresses come from the shared registry, not from the
host's own account file (``runtime/device_targets.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.errors import ConfigError
from stream_processor.rights.db import connect_rights_db
from stream_processor.runtime.device_targets import (
    forget_metrics_address,
    set_metrics_address,
    sync_registry_targets,
)
from stream_processor.runtime.registry import DeviceRegistry
from stream_processor.runtime.targets import targets_dir

pytestmark = pytest.mark.component

GATE = DeviceIdentity("acme", "hq", "door-1", "cam-1")
OTHER = DeviceIdentity("acme", "hq", "door-2", "cam-1")


def _targets(state: Path) -> dict[str, list[str]]:
    return {
        p.name: json.loads(p.read_text())[0]["targets"]
        for p in sorted(targets_dir(state).glob("registry-*.json"))
    }


@pytest.fixture
def shared(
    pg_cluster: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[DeviceRegistry]:
    from tests.support.store import new_pg_database

    monkeypatch.setenv("FACEGATE_RIGHTS_DSN", new_pg_database(pg_cluster))
    db = connect_rights_db(tmp_path / "admin")
    try:
        yield DeviceRegistry(db)
    finally:
        db.close()


def test_a_gate_registered_on_host_a_is_scraped_by_host_b_until_removed(
    shared: DeviceRegistry, tmp_path: Path
) -> None:
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    for ident in (GATE, OTHER):  # `devices add` on host A: registry row, then address
        shared.register(ident, by="os:test")
    set_metrics_address(host_a, GATE, "10.0.0.5:9100")
    set_metrics_address(host_a, OTHER, "10.0.0.6:9100")
    # Host B has no account file and no local record: its targets come from the registry.
    assert sync_registry_targets(host_b) == 2
    assert _targets(host_b) == {f"registry-{GATE.username}.json": ["10.0.0.5:9100"],
                                f"registry-{OTHER.username}.json": ["10.0.0.6:9100"]}
    # Removed on host A (the registry keeps the row, marked removed): no longer scraped.
    shared.remove(OTHER, by="os:test")
    forget_metrics_address(host_a, OTHER)
    assert sync_registry_targets(host_b) == 1
    assert list(_targets(host_b)) == [f"registry-{GATE.username}.json"]
    # An address forgotten on host A is forgotten for host B too.
    forget_metrics_address(host_a, GATE)
    assert sync_registry_targets(host_b) == 0 and _targets(host_b) == {}


def test_an_address_written_into_the_shared_database_by_hand_is_refused(
    shared: DeviceRegistry, tmp_path: Path
) -> None:
    """A hostile or careless operator with database access cannot make Prometheus scrape
    a URL with a path or credentials: the sync validates what it reads."""
    shared.register(GATE, by="os:test")
    shared.set_metrics_address(GATE, "user@evil.example/steal:9100")
    with pytest.raises(ConfigError, match="device registry"):
        sync_registry_targets(tmp_path / "host-b")
    assert _targets(tmp_path / "host-b") == {}
