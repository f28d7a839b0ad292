"""When a simulated gate publishes unconfirmed events again: after a stall (all, from
the oldest), after a lost stretch (only what the cloud has passed), never while the
cloud confirms in order but behind (at saturation re-sends would only add load)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from edge_agent.simulate.device import Endpoint, SimDevice
from edge_agent.wire.confirms import DeliveryConfirmation, encode_confirmation
from edge_agent.wire.topics import DeviceIdentity

pytestmark = pytest.mark.unit

IDENT = DeviceIdentity("t", "site-1", "gate-1", "sim")
TIMEOUT = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def device() -> Iterator[tuple[SimDevice, Clock]]:
    clock = Clock()
    d = SimDevice(
        Endpoint(IDENT, "127.0.0.1", 1, "u", "p"), confirms=True, confirm_timeout_s=TIMEOUT,
        keepalive_s=30, session_expiry_s=60, connect_timeout_s=1, clock=clock,
    )  # fmt: skip
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    d.sock = ours
    d._receive_max = 100
    for seq in range(1, 11):
        d.add(seq, b"{}", "key_card", True)
    d.fill(clock.now)  # all ten sent now
    yield d, clock
    ours.close()
    theirs.close()


def confirm(d: SimDevice, low: int, high: int) -> None:
    d._confirm(encode_confirmation(DeliveryConfirmation(
        schema_version=1, tenant="t", site="site-1", gate="gate-1", device="sim",
        confirmed_at_ms=1_700_000_000_000, from_seq=low, through_seq=high,
    )))  # fmt: skip


def resent(d: SimDevice) -> list[int]:
    return list(d._tosend)


def test_a_cloud_confirming_in_order_but_behind_gets_no_re_send(
    device: tuple[SimDevice, Clock],
) -> None:
    d, clock = device
    clock.now += TIMEOUT - 1
    confirm(d, 1, 5)
    clock.now += 2  # the rest were sent TIMEOUT + 1 ago, a confirmation came 1 s ago
    d.check_timeout(clock.now)
    assert resent(d) == [] and d.c.resends == 0 and list(d.pending) == [6, 7, 8, 9, 10]


def test_a_lost_stretch_is_sent_again_alone(device: tuple[SimDevice, Clock]) -> None:
    d, clock = device
    clock.now += TIMEOUT - 1
    confirm(d, 1, 3)
    confirm(d, 6, 8)  # 4 and 5 never arrived; the cloud is alive
    clock.now += 1.5
    d.check_timeout(clock.now)
    assert resent(d) == [4, 5] and d.c.resends == 1


def test_a_stalled_cloud_gets_everything_again_from_the_oldest_with_back_off(
    device: tuple[SimDevice, Clock],
) -> None:
    d, clock = device
    clock.now += TIMEOUT
    d.check_timeout(clock.now)
    assert resent(d) == list(range(1, 11))
    d.fill(clock.now)
    clock.now += TIMEOUT
    d.check_timeout(clock.now)  # the wait doubled: not yet
    assert resent(d) == [] and d.c.resends == 1
    clock.now += TIMEOUT
    d.check_timeout(clock.now)
    assert resent(d) == list(range(1, 11)) and d.c.resends == 2


def test_a_confirmation_for_another_device_removes_nothing(
    device: tuple[SimDevice, Clock],
) -> None:
    d, _ = device
    d._confirm(encode_confirmation(DeliveryConfirmation(
        schema_version=1, tenant="t", site="site-1", gate="gate-2", device="sim",
        confirmed_at_ms=1_700_000_000_000, from_seq=1, through_seq=10,
    )))  # fmt: skip
    assert len(d.pending) == 10 and d.c.confirmed == 0
