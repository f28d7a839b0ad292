"""Device status on the wire: MQTT → bridge → the compacted status topic → the web's
device table; a hostile status is dead-lettered with its reason and goes nowhere else."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from edge_agent.wire.status import decode_status, status_topic
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.bridge.validate import STATUS, Accepted, Rejected, check_any
from stream_processor.runtime.kafka_auth import Role
from tests.bridge.conftest import BridgeRig
from tests.conftest import wait_for
from tests.support.kafka import login_kwargs
from tests.support.records import status_payload

ME = DeviceIdentity("acme", "site-1", "gate-1", "cam-1")
LIMITS = BridgeSettings().limits()


@pytest.mark.unit
def test_status_routes_by_topic_and_is_keyed_by_device() -> None:
    kind, verdict = check_any(status_topic(ME), status_payload(), LIMITS, 0)
    assert kind == STATUS and verdict == Accepted(b"acme.site-1.gate-1.cam-1", status_payload())
    _, verdict = check_any(status_topic(ME), status_payload(device="cam-2"), LIMITS, 0)
    assert isinstance(verdict, Rejected) and verdict.reason == "identity_mismatch"
    _, verdict = check_any(status_topic(ME), status_payload(embedding=[0.5] * 128), LIMITS, 0)
    assert isinstance(verdict, Rejected) and verdict.reason == "unknown_field"
    _, verdict = check_any(status_topic(ME), b"x" * 5000, LIMITS, 0)
    assert isinstance(verdict, Rejected) and verdict.reason == "oversized"


@pytest.mark.e2e
def test_status_reaches_the_web_device_table(rig: BridgeRig, tmp_path: Path) -> None:
    from edge_agent.outbox import SqliteOutbox
    from edge_agent.uplink.publisher import OutboxPublisher
    from edge_agent.uplink.status import StatusReporter
    from stream_processor.web.devices import DeviceStatusFollower, DeviceTable

    conn = rig.device("site-1")
    rig.prepare_session()
    bridge = rig.start_bridge()
    topics = rig.p.topics()
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    publisher = OutboxPublisher(outbox, conn.identity, conn.mqtt)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    table = DeviceTable(offline_after_s=30)
    from prometheus_client import CollectorRegistry

    from stream_processor.quarantine import ConsumerMetrics, KafkaDeadLetters, Quarantine

    quarantine = Quarantine("web_device_status", ConsumerMetrics(CollectorRegistry()))
    # The web app's follower, logged in as the web app.
    web = login_kwargs(rig.p.stack, Role.WEB)
    dead_letters = KafkaDeadLetters(rig.bootstrap, topics.dlq, auth=web)
    follower = DeviceStatusFollower(
        rig.bootstrap, topics.device_status, table, quarantine, dead_letters, web
    ).start()
    try:
        reporter = StatusReporter(conn.identity, outbox, publisher.publish_status, ["sim"],
                                  templates=lambda: (200, 150), every_s=0.5)  # fmt: skip
        sent_before = time.time()

        def arrived() -> bool:
            reporter.tick()
            return bool(table.of_tenant("acme"))

        wait_for(arrived, 60, "a device status in the web's table")
        (row,) = table.of_tenant("acme")
        assert row.status.gallery_residents == 150 and row.status.models == ["sim"]
        assert row.last_seen_ms >= int(sent_before * 1000) - 1000
        # A hostile status on the device's own topic: dead-lettered, never in the table.
        import paho.mqtt.publish as mqtt_publish

        m = conn.mqtt
        mqtt_publish.single(
            status_topic(conn.identity),
            status_payload(embedding=[0.1] * 64, site=conn.identity.site),
            qos=1, hostname=m.host, port=m.port,
            auth={"username": m.username, "password": m.password.get_secret_value()},
            protocol=5,
        )  # fmt: skip
        wait_for(lambda: rig.count(topics.dlq) >= 1, 60, "the hostile status dead-lettered")
        (letter,) = [json.loads(v) for _, v in rig.read(topics.dlq)]
        assert letter["reason"] == "unknown_field"
        statuses = [decode_status(v) for _, v in rig.read(topics.device_status)]
        assert statuses and all(s.gallery_templates == 200 for s in statuses)
        assert bridge.poll() is None
    finally:
        follower.stop()
        dead_letters.close()
        stop.set()
        thread.join(10)
        outbox.close()
