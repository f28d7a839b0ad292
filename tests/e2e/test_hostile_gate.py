"""A hostile gate on the real brokers (issue 10): a real device account publishes every
kind of poison it can think of — the 400-digit ``seq``, 2**64, duplicate keys,
NaN/Infinity, deep nesting, invalid UTF-8, dates ten years ahead and weeks behind,
wrong types, extra fields, other devices' ids, oversized and empty payloads — then
20,000 valid events. Bridge and processor worker run as separate processes, as in
production.

Every hostile payload is in the DLQ with its reason (and counted per reason by the
bridge); every valid event is stored exactly once, including the ones published
twice; each raw record carries the bridge's receipt time as its Kafka timestamp; and
neither process restarted (same pids, alive)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire import GateEvent, encode_event
from edge_agent.wire.bounds import MAX_SAFE_INT, MIN_TIME_MS
from edge_agent.wire.topics import DeviceIdentity, event_topic
from stream_processor.dead_letter import decode_dead_letter
from stream_processor.runtime.devices import register_device
from stream_processor.stack.mosquitto import Mosquitto
from tests.conftest import Pipeline, free_ports, prepare_bridge_session, wait_for
from tests.support.kafka import confluent_config
from tests.support.processor import BASE_POLICY, TENANT, Harness, make_event

pytestmark = pytest.mark.e2e

VALID = 20_000
DAY = 86_400_000


def hostile(ident: DeviceIdentity, now_ms: int) -> list[tuple[str, bytes]]:
    """(the reason the bridge must give, payload)."""
    base = json.loads(encode_event(event(ident, 10**9, now_ms)))

    def doc(**over: Any) -> bytes:
        d = {**base, **over}
        return json.dumps({k: v for k, v in d.items() if v is not ...}).encode()

    good = encode_event(event(ident, 10**9 + 2, now_ms))  # a key card: it has a subject
    assert b'"subject"' in good
    raw = good.replace(b'"seq":1000000002', b'"seq":SEQ')

    def seq(text: str) -> bytes:
        return raw.replace(b"SEQ", text.encode())

    return [
        ("out_of_range", seq("9" * 400)),
        ("out_of_range", seq(str(2**64))),
        ("out_of_range", seq(str(2**63))),
        ("out_of_range", seq(str(MAX_SAFE_INT + 1))),
        ("out_of_range", seq("-1")),
        ("out_of_range", seq("-" + "9" * 400)),
        ("out_of_range", seq("1e999")),
        ("out_of_range", doc(occurred_at_ms=MIN_TIME_MS - 1)),  # 2019
        ("duplicate_key", good[:-1] + b',"subject":"ps1_' + b"0" * 32 + b'"}'),
        ("duplicate_key", good[:-1] + b',"seq":1}'),
        ("duplicate_key", good[:-1] + b',"s\\u0065q":1}'),  # an escaped spelling
        ("duplicate_key", good[:-1] + b',"device":"' + ident.device.encode() + b'"}'),
        ("non_finite", seq("NaN")),
        ("non_finite", seq("Infinity")),
        ("non_finite", seq("-Infinity")),
        ("too_deep", b"[" * 3000),
        ("too_deep", b'{"seq":' + b"[" * 2000 + b"]" * 2000 + b"}"),
        ("too_deep", doc(gate={"nested": {"deeper": [1]}})),
        ("invalid_utf8", good.replace(ident.gate.encode(), b"g\xffte", 1)),
        ("invalid_utf8", good.replace(b'"purpose":"access_control"', b'"purpose":"\xed\xa0\x80"')),
        ("invalid_utf8", b"\xff\xfe" + good),
        ("invalid_utf8", good.replace(b'"purpose":"access_control"', b'"purpose":"\\ud800"')),
        ("clock_skew", doc(occurred_at_ms=now_ms + 10 * 365 * DAY)),  # retention for years
        ("clock_skew", doc(occurred_at_ms=now_ms + 6 * 60_000)),
        ("clock_skew", doc(occurred_at_ms=now_ms - 30 * DAY)),
        ("invalid_field", seq('"7"')),
        ("invalid_field", seq("7.5")),
        ("invalid_field", seq("true")),
        ("invalid_field", doc(kind=5)),
        ("invalid_field", doc(schema_version=2)),
        ("invalid_field", doc(subject="Zhang San")),
        ("invalid_field", doc(site="site-\u0430")),  # a Cyrillic look-alike
        ("invalid_field", b"null"),
        ("invalid_field", b"[1,2,3]"),
        ("unknown_field", doc(image="/9j/" + "A" * 1000)),
        ("unknown_field", doc(embedding=[0.01] * 128)),
        ("unknown_field", doc(name="Zhang San", id_number="120101199001011234")),
        ("missing_field", doc(event_id=...)),
        ("identity_mismatch", doc(site="another-site")),
        ("identity_mismatch", doc(device="cam-other")),
        ("identity_mismatch", doc(tenant="other-tenant")),
        ("oversized", doc(reason="x" * 5000)),
        ("oversized", b"{" + b" " * 100_000 + b"}"),
        ("bad_json", b""),
        ("bad_json", good[:57]),
        ("bad_json", good + b"}"),
        ("bad_json", b"\xef\xbb\xbf" + good),  # a byte-order mark
        ("bad_json", b"{'seq': 1}"),
    ]


def event(ident: DeviceIdentity, seq: int, now_ms: int) -> GateEvent:
    # A minute old when published: distinct from the receipt time the bridge stamps.
    kind = ("key_card", "pin", "manual_open")[seq % 3]
    return make_event(  # type: ignore[no-any-return]
        kind, subject_id=seq % 50, site=ident.site, gate=ident.gate, device=ident.device,
        seq=seq, occurred_at_ms=now_ms - 60_000 + seq % 1000,
    )  # fmt: skip


class Device:
    """The gate's MQTT client: QoS 1, counting the broker's PUBACKs."""

    def __init__(self, conn: DeviceConnection) -> None:
        m = conn.mqtt
        self.acked: list[int] = []
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"hostile-{m.username}"[:60],
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.username_pw_set(m.username, m.password.get_secret_value())
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = lambda c, u, mid, rc, p: self.acked.append(rc.value)
        self.client.connect(m.host, m.port)
        self.client.loop_start()

    def publish(self, topic: str, payloads: list[bytes]) -> None:
        start = len(self.acked)
        for payload in payloads:
            self.client.publish(topic, payload, qos=1)
        wait_for(lambda: len(self.acked) - start >= len(payloads), 120, "broker PUBACKs")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_hostile_gate_cannot_stop_the_pipeline(pipeline: Pipeline) -> None:
    ident = DeviceIdentity(TENANT, "site-hostile", "gate-1", f"dev-{pipeline.tag}")
    settings = pipeline.stack.settings()
    conn = DeviceConnection.load(
        Path(register_device(settings, ident, tls=False, broker=Mosquitto(settings)))
    )
    metrics_port = free_ports(1)[0]
    pipeline.extra_env["FACEGATE_BRIDGE_METRICS_PORT"] = str(metrics_port)
    harness = Harness(pipeline, {"FACEGATE_STORE": "sqlite"})
    harness.apply_policy(BASE_POLICY)
    prepare_bridge_session(pipeline)
    bridge = pipeline.start("bridge", "run", name="bridge")
    worker = pipeline.start("processor", "worker", name="processor")
    pids = (bridge.pid, worker.pid)

    now_ms = int(time.time() * 1000)
    poison = hostile(ident, now_ms)
    valid = [event(ident, i, now_ms) for i in range(VALID)]
    replayed = valid[:500]  # a gate resending what it already sent: stored once
    topic = event_topic(ident)
    device = Device(conn)
    t0 = int(time.time() * 1000)
    try:
        device.publish(topic, [p for _, p in poison])
        device.publish(topic, [encode_event(e) for e in valid + replayed])
    finally:
        device.close()
    assert set(device.acked) == {0}, Counter(device.acked)

    topics = pipeline.topics()
    expected = Counter(reason for reason, _ in poison)
    try:
        wait_for(lambda: topic_size(pipeline, topics.dlq) >= len(poison), 60, "dead letters")
        wait_for(lambda: len(stored_ids(pipeline)) >= VALID, 120, "valid events stored")
    except AssertionError as exc:
        dlq = read_topic(pipeline, topics.dlq)
        found = Counter(decode_dead_letter(v).reason for _, v, _ in dlq)
        raise AssertionError(
            f"{exc}; dead letters missing: {expected - found}, extra: {found - expected};"
            f" stored {len(stored_ids(pipeline))}\nbridge: {pipeline.log('bridge')[-3000:]}"
            f"\nprocessor: {pipeline.log('processor')[-3000:]}"
        ) from None
    time.sleep(2)  # a duplicate row or a late dead letter would show now

    letters = [decode_dead_letter(v) for _, v, _ in read_topic(pipeline, topics.dlq)]
    assert Counter(d.reason for d in letters) == expected
    assert all(d.stage == "bridge" and d.source_topic == topic for d in letters)
    stored = stored_ids(pipeline)
    assert len(stored) == len(set(stored)) == VALID
    assert set(stored) == {e.event_id for e in valid}

    raw = read_topic(pipeline, topics.raw)
    assert len(raw) == VALID + len(replayed)
    t1 = int(time.time() * 1000)
    received: dict[str, int] = {}
    for _, value, (ts_type, ts) in raw:
        doc = json.loads(value)
        assert ts_type == 1 and t0 <= ts <= t1, (ts_type, ts, t0, t1)  # CreateTime = receipt
        assert ts > doc["occurred_at_ms"]
        received[doc["event_id"]] = min(ts, received.get(doc["event_id"], ts))
    # Retention counts from a time the cloud vouches for (90 days for these kinds).
    for event_id, expires in expiries(pipeline).items():
        assert expires is not None and expires <= received[event_id] + 90 * DAY

    assert (bridge.pid, worker.pid) == pids
    assert bridge.poll() is None, pipeline.log("bridge")
    assert worker.poll() is None, pipeline.log("processor")
    text = metrics_text(metrics_port)
    for reason, n in expected.items():
        assert sample(text, f'facegate_bridge_dead_lettered_total{{reason="{reason}"}}') == n
    assert sample(text, 'facegate_bridge_produced_total{kind="event"}') == VALID + len(replayed)
    harness.close()


def stored_ids(pipeline: Pipeline) -> list[str]:
    from stream_processor.store.sqlite import SqliteEventStore

    if not pipeline.store_path.exists():
        return []
    store = SqliteEventStore(pipeline.store_path)
    try:
        return list(store.iter_event_ids())
    finally:
        store.close()


def expiries(pipeline: Pipeline) -> dict[str, int | None]:
    import sqlite3

    db = sqlite3.connect(pipeline.store_path)
    try:
        return dict(db.execute("SELECT event_id, expires_at_ms FROM events"))
    finally:
        db.close()


def topic_size(pipeline: Pipeline, topic: str) -> int:
    from tests.bridge.conftest import topic_size as size

    return size(str(pipeline.stack.settings().kafka_bootstrap), topic)


def read_topic(pipeline: Pipeline, topic: str) -> list[tuple[bytes | None, bytes, Any]]:
    """Every record of the topic with its (timestamp type, timestamp)."""
    import uuid

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer(
        {
            **confluent_config(pipeline.stack),
            "group.id": f"read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        parts = list(c.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts if ends[p]])
        out: list[tuple[bytes | None, bytes, Any]] = []
        pos = dict.fromkeys(parts, 0)
        deadline = time.monotonic() + 60
        while any(pos[p] < ends[p] for p in parts) and time.monotonic() < deadline:
            for m in c.consume(10_000, 1.0):
                if m.error():
                    continue
                out.append((m.key(), m.value() or b"", m.timestamp()))
                pos[m.partition()] = (m.offset() or 0) + 1
        return out
    finally:
        c.close()


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in metrics"
    return float(match.group(1))
