"""On the real brokers: a payload carrying a 192-byte face template, a name and an id
number is dead-lettered by the bridge (published by a gate) and by the processor
(written around the bridge), and nothing of it can be read back from the DLQ."""

from __future__ import annotations

import json
import time

import msgspec
import pytest

from edge_agent.wire import encode_event
from tests.bridge.conftest import BridgeRig, events_for
from tests.conftest import wait_for
from tests.support.hostile import assert_unreadable, hostile_payload
from tests.support.records import dead_letters, produce

pytestmark = pytest.mark.e2e


def carrying_a_template(site: str) -> bytes:
    """A valid event with the hostile fields merged in (the bridge refuses the extras)."""
    event = msgspec.json.decode(encode_event(events_for(site, 1)[0]))
    return json.dumps({**event, **json.loads(hostile_payload())}).encode()


def test_no_dlq_writer_keeps_a_template_or_a_name(rig: BridgeRig) -> None:
    rig.apply_policy()
    rig.prepare_session()
    conn = rig.device("site-d")
    rig.start_bridge()
    rig.p.start("processor", "worker", name="processor")
    topics = rig.p.topics()
    time.sleep(2)  # the bridge's subscription in place before the gate publishes
    assert rig.publish(conn, [carrying_a_template("site-d"), hostile_payload()]).wait() == 0
    produce(rig.bootstrap, topics.raw, [(b"k", carrying_a_template("site-d"))])

    def letters() -> list[object]:
        return list(dead_letters(rig.bootstrap, topics.dlq))

    wait_for(lambda: len(letters()) >= 3, 120, "three dead letters")
    found = dead_letters(rig.bootstrap, topics.dlq)
    assert {d.stage for d in found} == {"bridge", "processor"}
    for _, value in rig.read(topics.dlq):
        assert_unreadable(value)
    for d in found:
        assert d.raw_len > 192 and d.raw_digest.startswith("hmac-sha256:")
        assert {"template", "name", "id_number"} <= set(d.fields_seen)
