"""Time from a gate is checked against the bridge's clock: too far ahead or older than the
edge's maximum queue age is ``clock_skew``; the bounds are inclusive and configurable,
and the default age is the one the edge's outbox purges at."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_agent.config import OutboxConfig
from edge_agent.wire import Decision, EventKind, GateEvent, encode_event, new_event_id
from edge_agent.wire.bounds import MAX_QUEUE_AGE_S
from edge_agent.wire.topics import DeviceIdentity, event_topic
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.bridge.validate import Accepted, Limits, Rejected, check_message

pytestmark = pytest.mark.unit

TOPIC = event_topic(DeviceIdentity("acme", "site-1", "gate-1", "cam-1"))
NOW = 1_800_000_000_000
LIMITS = BridgeSettings().limits()
DAY = 86_400_000


def at(occurred_ms: int) -> bytes:
    return encode_event(
        GateEvent(
            schema_version=1, event_id=new_event_id(), seq=1, tenant="acme",
            site="site-1", gate="gate-1", device="cam-1", kind=EventKind.MANUAL_OPEN,
            decision=Decision.GRANTED, purpose="access_control", occurred_at_ms=occurred_ms,
        )  # fmt: skip
    )


@pytest.mark.parametrize(
    ("offset_ms", "accepted"),
    [
        (0, True),
        (300_000, True),  # exactly the allowed skew
        (300_001, False),
        (10 * 365 * DAY, False),  # ten years ahead: the retention-extending attack
        (-7 * DAY, True),  # exactly the outbox's maximum age
        (-7 * DAY - 1, False),
        (-5 * 365 * DAY, False),
    ],
)
def test_occurred_time_is_checked_against_receipt(offset_ms: int, accepted: bool) -> None:
    verdict = check_message(TOPIC, at(NOW + offset_ms), LIMITS, NOW)
    if accepted:
        assert isinstance(verdict, Accepted)
    else:
        assert isinstance(verdict, Rejected) and verdict.reason == "clock_skew"
        assert str(abs(offset_ms)) in verdict.detail


def test_limits_are_configurable_and_default_to_the_edge_queue_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert LIMITS == Limits(4096, 300_000, MAX_QUEUE_AGE_S * 1000)
    assert OutboxConfig().max_age_s == MAX_QUEUE_AGE_S
    monkeypatch.setenv("FACEGATE_BRIDGE_MAX_CLOCK_SKEW_S", "5")
    monkeypatch.setenv("FACEGATE_BRIDGE_MAX_EVENT_AGE_S", "3600")
    tight = BridgeSettings().limits()
    assert tight.max_skew_ms == 5000 and tight.max_age_ms == 3_600_000
    assert isinstance(check_message(TOPIC, at(NOW + 6000), tight, NOW), Rejected)
    assert isinstance(check_message(TOPIC, at(NOW - 3_600_001), tight, NOW), Rejected)
    assert isinstance(check_message(TOPIC, at(NOW - 3_600_000), tight, NOW), Accepted)
    monkeypatch.setenv("FACEGATE_BRIDGE_MAX_CLOCK_SKEW_S", "-1")
    with pytest.raises(ValidationError):
        BridgeSettings()
