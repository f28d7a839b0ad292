"""10,000 hostile payloads interleaved with valid traffic, on real brokers: every
hostile one is dead-lettered with its reason, every valid one is stored, the
bridge stays up and healthy, and its metrics count each reason."""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest

from edge_agent.wire import encode_event
from edge_agent.wire.topics import event_topic
from stream_processor.dead_letter import decode_dead_letter
from tests.bridge.conftest import BridgeRig, events_for
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

HOSTILE = 10_000
VALID = 5_000


def hostile_payloads(n: int, site: str, rng: random.Random) -> list[tuple[bytes, str]]:
    """(payload, the reason the bridge must give) — a mix of every way to be wrong."""
    base = msgspec.json.decode(encode_event(events_for(site, 1)[0]))

    def variant(i: int, **changes: Any) -> bytes:
        doc = {**base, "event_id": events_for(site, 1)[0].event_id, "seq": 10**6 + i}
        doc.update(changes)
        return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()

    makers: list[tuple[str, Any]] = [
        ("bad_json", lambda i: b"\x00" + os.urandom(rng.randint(0, 150)).hex().encode()),
        ("invalid_utf8", lambda i: b"\x00" + os.urandom(rng.randint(0, 300)) + b"\xff"),
        ("bad_json", lambda i: variant(i)[: rng.randint(1, 100)]),  # truncated
        ("bad_json", lambda i: b""),
        ("invalid_utf8", lambda i: b"\xff\xfe" + variant(i)),
        ("too_deep", lambda i: b"[" * 4000),
        ("unknown_field", lambda i: variant(i, image="/9j/" + "A" * 1500)),
        ("unknown_field", lambda i: variant(i, embedding=[rng.random() for _ in range(64)])),
        ("unknown_field", lambda i: variant(i, name="Zhang San", id_number="1201")),
        ("missing_field", lambda i: variant(i, event_id=...)),
        ("missing_field", lambda i: variant(i, tenant=...)),
        ("out_of_range", lambda i: variant(i, seq=-1)),
        ("out_of_range", lambda i: variant(i, seq=10**400)),
        ("invalid_field", lambda i: variant(i, seq="7")),
        ("invalid_field", lambda i: variant(i, kind="teleport")),
        ("invalid_field", lambda i: variant(i, subject="resident-00001")),
        ("out_of_range", lambda i: variant(i, occurred_at_ms=0)),
        ("invalid_field", lambda i: variant(i, schema_version=2)),
        ("invalid_field", lambda i: variant(i, kind="face_match", subject=None)),
        ("invalid_field", lambda i: b"null"),
        ("invalid_field", lambda i: b'"just a string"'),
        ("oversized", lambda i: variant(i, reason="x" * 5000)),
        ("oversized", lambda i: os.urandom(70_000)),
        ("identity_mismatch", lambda i: variant(i, site="site-other")),
        ("identity_mismatch", lambda i: variant(i, device="cam-9")),
        ("identity_mismatch", lambda i: variant(i, tenant="other-firm")),
    ]
    out = []
    for i in range(n):
        reason, make = makers[i % len(makers)]
        out.append((make(i), reason))
    return out


def test_ten_thousand_hostile_payloads_interleaved_with_valid(rig: BridgeRig) -> None:
    rng = random.Random(4)
    rig.apply_policy()
    rig.prepare_session()
    conn = rig.device("site-h")
    topic = event_topic(conn.identity)
    valid = events_for("site-h", VALID)
    hostile = hostile_payloads(HOSTILE, "site-h", rng)
    stream: list[tuple[bytes, str | None]] = [(encode_event(e), None) for e in valid] + [
        (p, r) for p, r in hostile
    ]
    rng.shuffle(stream)

    rig.p.start("processor", "worker", name="processor")
    bridge = rig.start_bridge()
    port = int(rig.p.extra_env["FACEGATE_BRIDGE_METRICS_PORT"])
    wait_for(lambda: _up(rig, port), 60, "bridge health endpoint")

    m = conn.mqtt
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="hostile", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(m.username, m.password.get_secret_value())
    client.max_inflight_messages_set(500)
    acked: list[int] = []
    client.on_publish = lambda c, u, mid, rc, p: acked.append(rc.value)
    client.connect(m.host, m.port)
    client.loop_start()
    for payload, _ in stream:
        client.publish(topic, payload, qos=1)
    wait_for(lambda: len(acked) >= len(stream), 180, "every publish acknowledged by the broker")
    client.disconnect()
    client.loop_stop()
    assert set(acked) == {0}

    topics = rig.p.topics()
    wait_for(lambda: rig.count(topics.dlq) >= HOSTILE, 180, "every hostile payload dead-lettered")
    wait_for(lambda: len(rig.stored_ids()) >= VALID, 240, "every valid event stored")
    time.sleep(2)

    letters = [decode_dead_letter(v) for _, v in rig.read(topics.dlq)]
    assert len(letters) == HOSTILE
    assert Counter(d.reason for d in letters) == Counter(r for _, r in hostile)
    assert all(d.source_topic == topic and d.stage == "bridge" for d in letters)
    assert all(d.raw_len >= 0 and d.raw_digest.startswith("hmac-sha256:") for d in letters)
    assert all(d.detail for d in letters)
    stored = rig.stored_ids()
    assert len(stored) == len(set(stored)) == VALID
    assert set(stored) == {e.event_id for e in valid}
    assert {json.loads(v)["event_id"] for _, v in rig.read(topics.raw)} == set(stored)

    # Alive, healthy, nothing left in flight, every reason counted.
    assert bridge.poll() is None
    status, health = rig.health(port)
    assert status == 200 and health["mqtt_connected"] and health["inflight"] == 0
    text = rig.metrics(port)
    for reason, n in Counter(r for _, r in hostile).items():
        assert _sample(text, f'facegate_bridge_dead_lettered_total{{reason="{reason}"}}') == n
    assert _sample(text, 'facegate_bridge_produced_total{kind="event"}') == VALID
    assert _sample(text, "facegate_bridge_received_total") == VALID + HOSTILE
    assert _sample(text, "facegate_bridge_acked_total") == VALID + HOSTILE
    assert _sample(text, "facegate_bridge_inflight") == 0
    assert _sample(text, "facegate_bridge_produce_latency_seconds_count") == VALID + HOSTILE


def _up(rig: BridgeRig, port: int) -> bool:
    try:
        return rig.health(port)[0] == 200
    except OSError:
        return False


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in metrics"
    return float(match.group(1))
