"""A gate whose copy of the broker's CA is empty, cut short or not a certificate stops
with one ConfigError that names the file and what to do, never an ssl traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import ConfigError
from edge_agent.outbox import SqliteOutbox
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings
from edge_agent.wire.topics import DeviceIdentity

pytestmark = pytest.mark.unit

IDENTITY = DeviceIdentity(tenant="acme", site="north", gate="main", device="cam-1")
PEM_HEAD = b"-----BEGIN CERTIFICATE-----\n"


def _publisher(tmp: Path, ca: Path) -> OutboxPublisher:
    settings = MqttSettings(username="gate", password="pw", ca_file=ca)
    return OutboxPublisher(SqliteOutbox(tmp / "outbox.sqlite"), IDENTITY, settings)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.just(b""),
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda b: PEM_HEAD + b),  # a copy cut short
    )
)
def test_a_bad_ca_copy_is_one_config_error(tmp_path: Path, content: bytes) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        _publisher(tmp_path, ca)
    assert str(ca) in str(raised.value) and "devices add" in str(raised.value)


def test_a_missing_ca_file_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be loaded"):
        _publisher(tmp_path, tmp_path / "absent.crt")
