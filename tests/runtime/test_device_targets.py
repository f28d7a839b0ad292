"""The registry's metrics addresses: validated, turned into bounded file_sd targets,
re-synced at `stack up --with-monitoring`, dropped with the device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.errors import ConfigError
from stream_processor.runtime.accounts import AccountBook
from stream_processor.runtime.device_targets import (
    forget_metrics_address,
    parse_metrics_address,
    set_metrics_address,
    sync_registry_targets,
)
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.targets import targets_dir

pytestmark = pytest.mark.unit

GATE = DeviceIdentity("acme", "hq", "door-1", "cam-1")


@pytest.mark.parametrize(
    ("text", "normal"),
    [("10.0.0.5:9100", "10.0.0.5:9100"), (" gate-1.site.lan:9100 ", "gate-1.site.lan:9100"),
     ("[::1]:9100", "[::1]:9100"), ("[0:0::1]:80", "[::1]:80")],
)  # fmt: skip
def test_good_addresses_are_normalised(text: str, normal: str) -> None:
    assert parse_metrics_address(text) == normal


@pytest.mark.parametrize(
    "text",
    ["10.0.0.5", ":9100", "h:0", "h:65536", "h:-1", "http://h:9100", "h/metrics:9100",
     "user@h:9100", "0.0.0.0:9100", "[::]:9100", "[zz]:9100", "h :9100", "-h:9100", "h:9x"],
)  # fmt: skip
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="metrics address"):
        parse_metrics_address(text)


@given(st.text(max_size=40))
def test_whatever_is_accepted_is_only_a_host_and_a_port(text: str) -> None:
    try:
        address = parse_metrics_address(text)
    except ConfigError:
        return
    host, _, port = address.rpartition(":")
    assert 0 < int(port) < 65536 and host
    assert not any(c in address for c in "/@?# \t\n")


def _target(state: Path) -> list[dict[str, object]]:
    [path] = targets_dir(state).glob("registry-*.json")
    doc: list[dict[str, object]] = json.loads(path.read_text())
    return doc


def test_a_target_per_device_with_bounded_labels_dropped_with_it(tmp_path: Path) -> None:
    AccountBook(StateLayout(tmp_path)).add_device(GATE)
    set_metrics_address(tmp_path, GATE, "10.0.0.5:9100")
    assert _target(tmp_path) == [{
        "targets": ["10.0.0.5:9100"],
        "labels": {"job": "facegate-edge", "tenant": "acme", "site": "hq",
                   "gate": "door-1", "device": "cam-1"},
    }]  # fmt: skip
    forget_metrics_address(tmp_path, GATE)
    assert not list(targets_dir(tmp_path).glob("*.json"))
    assert sync_registry_targets(tmp_path) == 0


def test_sync_rewrites_lost_targets_and_drops_those_of_gone_accounts(tmp_path: Path) -> None:
    book = AccountBook(StateLayout(tmp_path))
    other = DeviceIdentity("acme", "hq", "door-2", "cam-1")
    for ident, port in ((GATE, 9100), (other, 9101)):
        book.add_device(ident)
        set_metrics_address(tmp_path, ident, f"10.0.0.5:{port}")
    for path in targets_dir(tmp_path).glob("*.json"):
        path.unlink()
    book.remove_device(other)  # its account gone some other way than `devices remove`
    assert sync_registry_targets(tmp_path) == 1
    assert _target(tmp_path)[0]["targets"] == ["10.0.0.5:9100"]


def test_a_tampered_record_is_one_config_error(tmp_path: Path) -> None:
    AccountBook(StateLayout(tmp_path)).add_device(GATE)
    set_metrics_address(tmp_path, GATE, "10.0.0.5:9100")
    record = StateLayout(tmp_path).devices_dir / "metrics" / f"{GATE.username}.json"
    doc = json.loads(record.read_text())
    doc[0]["address"] = "evil/path:1"
    record.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="not a device metrics record"):
        sync_registry_targets(tmp_path)
