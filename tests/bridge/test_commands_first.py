"""Commands before the backlog, on the real brokers: a gate cut off from its broker
queues 50,000 events; meanwhile a resident withdraws consent and the cloud's
withdrawal command waits in the gate's persistent session. When the gate is
reachable again it carries out the withdrawal before it publishes anything:
none of the withdrawn resident's queued events leaves the gate, every other
event is stored exactly once, and the withdrawal's ack reaches Kafka.

Knobs (environment): FACEGATE_TEST_OUTAGE_S (default 5; the issue's case is 600,
see docs/testing.md) and FACEGATE_TEST_QUEUED (default 50000).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import msgspec
import pytest

from edge_agent.commands.handler import CommandHandler
from edge_agent.gallery.store import GalleryFile
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.wire import decode_event
from edge_agent.wire.commands import CommandType, EdgeCommand, decode_ack, encode
from edge_agent.wire.ids import new_event_id
from tests.bridge.conftest import BridgeRig
from tests.conftest import wait_for
from tests.support.edge import TcpProxy
from tests.support.processor import make_event
from tests.support.records import produce

pytestmark = pytest.mark.e2e

OUTAGE_S = float(os.environ.get("FACEGATE_TEST_OUTAGE_S", "5"))
QUEUED = int(os.environ.get("FACEGATE_TEST_QUEUED", "50000"))
SITE = "site-w"
#: Every 10th queued event is the withdrawn resident's.
WITHDRAWN_EVERY = 10


def queue_backlog(outbox: SqliteOutbox) -> tuple[str, list[Any]]:
    """QUEUED key-card events of 50 residents; returns the withdrawn one's pseudonym."""
    withdrawn = make_event("key_card", subject_id=0, site=SITE).subject
    events: list[Any] = []
    for start in range(0, QUEUED, 5000):
        made = [
            make_event(
                "key_card", site=SITE,
                subject_id=0 if i % WITHDRAWN_EVERY == 0 else 1 + i % 49,
            )
            for i in range(start, min(QUEUED, start + 5000))
        ]  # fmt: skip
        events += outbox.append_many(
            [lambda seq, e=e: msgspec.structs.replace(e, seq=seq) for e in made]
        )
    return withdrawn, events


@pytest.mark.timeout(OUTAGE_S + 600)  # the outage, and the suite's usual 10 minutes
def test_an_offline_gate_purges_a_withdrawn_residents_backlog_before_publishing(
    rig: BridgeRig,
) -> None:
    rig.apply_policy()
    rig.prepare_session()
    conn = rig.device(SITE)
    rig.p.start("processor", "worker", name="processor")
    rig.start_bridge()
    outbox = SqliteOutbox(rig.p.tmp / "outbox.sqlite")
    handler = CommandHandler(
        conn.identity, "access_control", GalleryFile(rig.p.tmp / "g.fgg", os.urandom(32)),
        outbox, EdgeMetrics(),
    )  # fmt: skip
    proxy = TcpProxy(conn.mqtt.port)
    proxy.up()
    publisher = OutboxPublisher(
        outbox, conn.identity, conn.mqtt.model_copy(update={"port": proxy.port}),
        on_command=handler.handle_payload,
    )  # fmt: skip
    stop = threading.Event()
    threading.Thread(target=publisher.run, args=(stop,), daemon=True).start()
    try:
        wait_for(lambda: publisher.ready, 30, "the gate's persistent session")
        proxy.down()  # the outage: the gate cannot reach its broker
        wait_for(lambda: not publisher.connected, 30, "the gate to notice")
        outage_began = time.monotonic()
        withdrawn, events = queue_backlog(outbox)
        command = EdgeCommand(
            schema_version=1, command_id=new_event_id(), type=CommandType.WITHDRAW_CONSENT,
            tenant=conn.identity.tenant, site=SITE, subject=withdrawn,
            issued_at_ms=int(time.time() * 1000),
        )  # fmt: skip
        topics = rig.p.topics()
        produce(rig.bootstrap, topics.commands, [(f"acme/{SITE}".encode(), encode(command))])
        port = int(rig.p.env["FACEGATE_BRIDGE_METRICS_PORT"])
        wait_for(
            lambda: "facegate_bridge_commands_relayed_total 1.0" in rig.metrics(port), 60,
            "the withdrawal relayed to the gate's broker",
        )  # fmt: skip
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_began)))
        assert publisher.published == 0
        proxy.up()
        expected = {e.event_id for e in events if e.subject != withdrawn}
        wait_for(lambda: outbox.depth() == 0, 300, "the backlog confirmed and the ack too")
        wait_for(lambda: len(rig.stored_ids()) >= len(expected), 300, "every event stored")
        time.sleep(3)  # a duplicate row would show up now
    finally:
        stop.set()
        proxy.down()
    raw = [decode_event(value) for _, value in rig.read(topics.raw)]
    assert not [e for e in raw if e.subject == withdrawn]  # none left the gate
    stored = rig.stored_ids()
    assert len(stored) == len(set(stored)) == len(expected) == QUEUED - QUEUED // WITHDRAWN_EVERY
    assert set(stored) == expected
    acks = [decode_ack(value) for _, value in rig.read(topics.acks)]
    # One ack (a re-sent copy, were its confirmation lost, would be the same ack).
    assert {(a.command_id, a.outbox_events_purged) for a in acks} == {
        (command.command_id, QUEUED // WITHDRAWN_EVERY)
    }
    assert rig.count(topics.dlq) == 0


def test_a_withdrawal_lost_in_a_mosquitto_crash_is_relayed_again(rig: BridgeRig) -> None:
    """kill -9 Mosquitto right after the bridge relayed a withdrawal to an offline
    gate's session: the bridge relays the last commands again when it reconnects, and
    the gate, back online, carries it out and acks it."""
    from stream_processor.stack.mosquitto import Mosquitto

    rig.prepare_session()
    conn = rig.device("site-k")
    outbox = SqliteOutbox(rig.p.tmp / "outbox-k.sqlite")
    handler = CommandHandler(
        conn.identity, "access_control", GalleryFile(rig.p.tmp / "k.fgg", os.urandom(32)),
        outbox, EdgeMetrics(),
    )  # fmt: skip
    first = OutboxPublisher(outbox, conn.identity, conn.mqtt, on_command=handler.handle_payload)
    first.start()
    wait_for(lambda: first.ready, 30, "the gate's persistent session")
    first.close()  # the gate goes offline
    broker = Mosquitto(rig.settings)
    broker.down()  # a clean stop saves both sessions
    broker.up()
    rig.start_bridge()
    port = int(rig.p.env["FACEGATE_BRIDGE_METRICS_PORT"])
    subject = make_event("key_card", subject_id=3, site="site-k").subject
    command = EdgeCommand(
        schema_version=1, command_id=new_event_id(), type=CommandType.WITHDRAW_CONSENT,
        tenant=conn.identity.tenant, site="site-k", subject=subject,
        issued_at_ms=int(time.time() * 1000),
    )  # fmt: skip
    topics = rig.p.topics()
    produce(rig.bootstrap, topics.commands, [(b"acme/site-k", encode(command))])

    def relayed() -> float:
        try:
            text = rig.metrics(port)
        except OSError:  # the bridge's metrics server is not up yet
            return 0.0
        for line in text.splitlines():
            if line.startswith("facegate_bridge_commands_relayed_total "):
                return float(line.split()[1])
        return 0.0

    wait_for(lambda: relayed() >= 1, 60, "the withdrawal relayed")
    broker.kill()  # before its next save, most likely: the queued command is gone
    broker.up()
    wait_for(lambda: relayed() >= 2, 60, "the withdrawal relayed again after the reconnect")
    second = OutboxPublisher(outbox, conn.identity, conn.mqtt, on_command=handler.handle_payload)
    stop = threading.Event()
    threading.Thread(target=second.run, args=(stop,), daemon=True).start()
    try:
        wait_for(
            lambda: any(
                decode_ack(v).command_id == command.command_id for _, v in rig.read(topics.acks)
            ), 60, "the gate's ack in Kafka",
        )  # fmt: skip
    finally:
        stop.set()
    assert second.commands_received >= 1
