"""The agent as a user runs it (``facegate edge enroll`` / ``run``), on the real Mosquitto.

Every payload the device publishes is checked by the watcher: no image, no
float, no array, no resident id, card number or PIN, no field outside the contract.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.decision import credential, event_maker
from edge_agent.outbox import SqliteOutbox
from edge_agent.pseudonym import consent_digest, load_site_secret, pseudonym
from edge_agent.wire import EventKind
from edge_agent.wire.commands import CommandType, EdgeCommand, encode
from edge_agent.wire.ids import new_event_id
from edge_agent.wire.topics import site_command_topic
from tests.conftest import wait_for
from tests.support.edge import AgentProcess, TcpProxy, bridge_client, cli, write_config

RESIDENT = "resident-obama-44"
CARD_RESIDENT = "resident-card-only-9"
CARD = "CARD-XYZ-QQ"


def gate_frame(photo: Path | None) -> np.ndarray:
    frame = np.full((480, 640, 3), 90, dtype=np.uint8)
    if photo is not None:
        img = cv2.imread(str(photo))
        scale = 420 / img.shape[0]
        img = cv2.resize(img, (int(img.shape[1] * scale), 420))
        img = img[:, : min(img.shape[1], 600)]
        x = (640 - img.shape[1]) // 2
        frame[30:450, x : x + img.shape[1]] = img
    return frame


def write_frames(folder: Path, sequence: list[tuple[Path | None, int]]) -> int:
    folder.mkdir()
    n = 0
    for photo, count in sequence:
        image = gate_frame(photo)
        for _ in range(count):
            cv2.imwrite(str(folder / f"{n:05d}.jpg"), image)
            n += 1
    return n


def outbox_rows(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


@pytest.mark.e2e
def test_agent_recognises_on_device_and_publishes_one_anonymized_event_per_approach(
    assets, device, watch, agents, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    config = write_config(
        tmp_path, assets, device.connection,
        video={"kind": "folder", "uri": str(tmp_path / "frames"), "fps": 0},
        recognition={"cooldown_s": 0},
    )
    refused = cli("edge", "enroll", "--config", str(config), "--resident-id", RESIDENT,
                  "--photo", str(assets.photo("obama.jpg")), "--adult", check=False)
    assert refused.returncode != 0 and "consent" in refused.stderr
    cli("edge", "enroll", "--config", str(config), "--resident-id", RESIDENT,
        "--photo", str(assets.photo("obama.jpg")), "--consent-ref", "CONSENT-2026-001", "--adult")
    listing = cli("edge", "gallery", "list", "--config", str(config)).stdout
    assert RESIDENT not in listing and "1 residents, 1 templates" in listing
    blank = (None, 8)
    frames = write_frames(tmp_path / "frames", [
        (assets.photo("obama2.jpg"), 10), blank,
        (assets.photo("biden.jpg"), 10), blank,
        (assets.photo("obama3.jpg"), 10), blank,
    ])
    w = watch(device, forbidden=[RESIDENT])
    agent = AgentProcess(config, tmp_path / "agent.log", "--exit-when-done")
    agents.append(agent)
    assert agent.proc.wait(180) == 0, agent.text()
    wait_for(lambda: len(w.events()) >= 3, 30, "three events")
    time.sleep(1)
    events = w.events()
    subject = pseudonym(load_site_secret(tmp_path / "site.secret"), RESIDENT)
    assert [(e["kind"], e.get("subject")) for e in events] == [
        ("face_match", subject), ("unknown_face", None), ("face_match", subject)
    ], f"{frames} frames gave {events}"
    assert [e["seq"] for e in events] == [0, 1, 2]
    # The form's number stays at the site: the event carries its site-keyed digest.
    secret = load_site_secret(tmp_path / "site.secret")
    assert events[0]["consent_ref"] == consent_digest(secret, "CONSENT-2026-001")
    assert events[0]["model"] == "blazeface-back256+mobilefacenet-192"
    assert events[0]["decision"] == "granted" and events[1]["decision"] == "denied"
    assert w.check_all() == 3


@pytest.mark.component
def test_withdrawal_sent_while_offline_purges_queued_events_and_template_and_is_acked(
    assets, device, watch, agents, running_stack, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    config = write_config(tmp_path, assets, device.connection)
    cli("edge", "enroll", "--config", str(config), "--resident-id", RESIDENT,
        "--photo", str(assets.photo("obama.jpg")), "--consent-ref", "C-1", "--adult",
        "--card", "CARD-OBAMA-1")
    cli("edge", "enroll", "--config", str(config), "--resident-id", CARD_RESIDENT,
        "--card", CARD, "--adult")
    secret = load_site_secret(tmp_path / "site.secret")
    withdrawn, other = pseudonym(secret, RESIDENT), pseudonym(secret, CARD_RESIDENT)

    # First start: the broker learns the device's persistent session.
    first = AgentProcess(config, tmp_path / "agent1.log")
    agents.append(first)
    wait_for(lambda: "listening for commands" in first.text(), 30, "subscription")
    port = int(first.text().split("metrics and health on http://127.0.0.1:")[1].split()[0])
    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read())
    assert health["ok"] is True and health["outbox_depth"] == 0

    def metrics() -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()

    wait_for(lambda: "facegate_edge_mqtt_connected 1.0" in metrics(), 10, "connected gauge")
    text = metrics()
    assert "facegate_edge_gallery_templates 1.0" in text
    assert "ps1_" not in text and RESIDENT not in text
    assert first.stop() == 0

    # Offline: key-card events queue up for both residents ...
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    now = int(time.time() * 1000)
    makers = []
    for i in range(10):
        who = withdrawn if i % 2 == 0 else other
        makers.append(event_maker(device.identity, "access_control",
                                  credential(EventKind.KEY_CARD, who, None), now))
    outbox.append_many(makers)
    outbox.close()
    # ... and the cloud sends a withdrawal to the whole site.
    cmd = EdgeCommand(
        schema_version=1, command_id=new_event_id(), type=CommandType.WITHDRAW_CONSENT,
        tenant=device.identity.tenant, site=device.identity.site, subject=withdrawn,
        issued_at_ms=now, request_id=new_event_id(),
    )
    sender = bridge_client(running_stack, f"cloud-{time.time_ns()}")
    info = sender.publish(site_command_topic(device.identity.tenant, device.identity.site),
                          encode(cmd), qos=1)
    info.wait_for_publish(10)
    sender.disconnect()
    sender.loop_stop()

    w = watch(device, forbidden=[RESIDENT, CARD_RESIDENT, CARD, "CARD-OBAMA-1"])
    second = AgentProcess(config, tmp_path / "agent2.log")
    agents.append(second)
    wait_for(lambda: len(w.acks()) == 1 and len(w.events()) >= 5, 60, "ack and events")
    time.sleep(1)
    assert second.stop() == 0
    # The command was acknowledged to the broker: a third start gets it no more.
    third = AgentProcess(config, tmp_path / "agent3.log")
    agents.append(third)
    wait_for(lambda: "listening for commands" in third.text(), 30, "third subscription")
    time.sleep(2)
    assert third.stop() == 0
    assert len(w.acks()) == 1 and "command " not in third.text()
    ack = w.acks()[0]
    assert ack["command_id"] == cmd.command_id and ack["request_id"] == cmd.request_id
    assert (ack["status"], ack["templates_removed"], ack["outbox_events_purged"]) == (
        "done", 1, 5
    )
    assert ack["subject"] == withdrawn
    events = w.events()
    assert len(events) == 5 and {e["subject"] for e in events} == {other}
    # The template is gone; the key card is kept (withdrawal of face consent only).
    listing = cli("edge", "gallery", "list", "--config", str(config)).stdout
    assert "2 residents, 0 templates" in listing
    assert w.check_all() == 6


@pytest.mark.e2e
def test_kill_9_with_5000_events_queued_and_the_broker_down_loses_nothing(
    assets, device, watch, agents, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    proxy = TcpProxy(device.port)  # down: nothing listens on its port yet
    connection = device.with_port(proxy.port, tmp_path / "device-via-proxy.json")
    config = write_config(tmp_path, assets, connection)
    cli("edge", "enroll", "--config", str(config), "--resident-id", CARD_RESIDENT,
        "--card", CARD, "--adult")
    creds = tmp_path / "credentials.txt"
    creds.write_text("")
    first = AgentProcess(config, tmp_path / "agent1.log")
    agents.append(first)
    # The credential reader follows the file from its end as of the agent's start.
    wait_for(lambda: "agent started" in first.text(), 60, "agent start")
    with open(creds, "a") as fh:
        for i in range(5000):
            fh.write(f"card {CARD}\n" if i % 2 else "card UNKNOWN-CARD\n")
    wait_for(lambda: outbox_rows(tmp_path / "outbox.sqlite") >= 5000, 120, "5000 queued")
    first.kill9()
    assert outbox_rows(tmp_path / "outbox.sqlite") == 5000

    w = watch(device, forbidden=[CARD_RESIDENT, CARD])
    proxy.up()
    try:
        second = AgentProcess(config, tmp_path / "agent2.log")
        agents.append(second)
        wait_for(lambda: len(w.events()) >= 5000, 180, "5000 events published")
        wait_for(lambda: outbox_rows(tmp_path / "outbox.sqlite") == 0, 30, "outbox empty")
        time.sleep(1)
        assert second.stop() == 0
    finally:
        proxy.down()
    events = w.events()
    assert len(events) == 5000
    assert [e["seq"] for e in events] == list(range(5000))  # in order, once each
    assert len({e["event_id"] for e in events}) == 5000
    granted = [e for e in events if e["decision"] == "granted"]
    assert len(granted) == 2500 and all(e["kind"] == "key_card" for e in events)
    assert w.check_all() == 5000
