"""A simulated gate re-sends like a real one: at most ``resend_window`` already-sent
events per round, ahead of the events still waiting for their first send, with
rounds spaced by the shared back-off schedule (doubling to the cap, reset by a
confirmation)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from edge_agent.simulate.device import Endpoint, SimDevice
from edge_agent.uplink.resend import resend_delay_s
from edge_agent.wire.confirms import DeliveryConfirmation, encode_confirmation
from edge_agent.wire.topics import DeviceIdentity

pytestmark = pytest.mark.unit

IDENT = DeviceIdentity("t", "site-1", "gate-1", "sim")
TIMEOUT, CAP, WINDOW = 5.0, 20.0, 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def device() -> Iterator[tuple[SimDevice, Clock]]:
    """Ten events sent, two more made while the broker's window was full."""
    clock = Clock()
    d = SimDevice(
        Endpoint(IDENT, "127.0.0.1", 1, "u", "p"), confirms=True, confirm_timeout_s=TIMEOUT,
        keepalive_s=30, session_expiry_s=60, connect_timeout_s=1, clock=clock,
        resend_cap_s=CAP, resend_jitter=0.0, resend_window=WINDOW,
    )  # fmt: skip
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    d.sock = ours
    d._receive_max = 10
    for seq in range(1, 11):
        d.add(seq, b"{}", "key_card", True)
    d.fill(clock.now)
    d.add(11, b"{}", "key_card", True)
    d.add(12, b"{}", "key_card", True)
    yield d, clock
    ours.close()
    theirs.close()


def confirm(d: SimDevice, low: int, high: int) -> None:
    d._confirm(encode_confirmation(DeliveryConfirmation(
        schema_version=1, tenant="t", site="site-1", gate="gate-1", device="sim",
        confirmed_at_ms=1_700_000_000_000, from_seq=low, through_seq=high,
    )))  # fmt: skip


def rounds_within(d: SimDevice, clock: Clock, seconds: int) -> list[int]:
    at = []
    for s in range(seconds):
        clock.now += 1
        before = d.c.resends
        d.check_timeout(clock.now)
        if d.c.resends > before:
            at.append(s + 1)
    return at


def test_a_stall_re_sends_one_window_ahead_of_the_unsent(
    device: tuple[SimDevice, Clock],
) -> None:
    d, clock = device
    clock.now += TIMEOUT
    d.check_timeout(clock.now)
    assert list(d._tosend) == [1, 2, 3, 11, 12]  # not all ten again; 11, 12 kept
    assert d.c.resends == 1


def test_a_lost_stretch_longer_than_the_window_goes_a_window_per_round(
    device: tuple[SimDevice, Clock],
) -> None:
    d, clock = device
    clock.now += TIMEOUT - 1
    confirm(d, 9, 10)  # 1..8 lost, the cloud alive
    clock.now += 1.5
    d.check_timeout(clock.now)
    assert list(d._tosend) == [1, 2, 3, 11, 12]


def test_rounds_back_off_to_the_cap_and_a_confirmation_resets_them(
    device: tuple[SimDevice, Clock],
) -> None:
    d, clock = device
    # 5 s, then +10, +20 (the cap), +20: the shared schedule without jitter.
    assert rounds_within(d, clock, 55) == [5, 15, 35, 55]
    assert resend_delay_s(3, TIMEOUT, CAP, 0.0, 0.0) == CAP
    d.fill(clock.now)
    confirm(d, 1, 1)
    assert rounds_within(d, clock, 5) == [5]  # back to one timeout
