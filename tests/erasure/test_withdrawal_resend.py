"""A withdrawal whose command is lost on the way to an offline gate is re-sent until the gate
acknowledges it: real brokers, bridge, processor, erasure worker and a real edge agent.

The command is lost for good: the gate's MQTT session is gone (a device reset connects
once with a clean start) and the bridge's replay window is closed (``0``), so only the
erasure worker's re-send can still bring it."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from edge_agent.pseudonym import pseudonym
from edge_agent.wire.commands import EdgeCommand, decode_command
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.processor.ledger import legacy_withdrawal_id, withdrawal_command
from stream_processor.runtime.command_key import command_key
from tests.conftest import free_ports, wait_for
from tests.erasure.conftest import OTHER, RESIDENT, ErasureRig, Gate
from tests.support.processor import TENANT

pytestmark = pytest.mark.e2e


def drop_session(rig: ErasureRig, gate: Gate) -> None:
    """Another process connects as the device (a reset gate): it takes what the broker
    queued for the device, and its session ends when it leaves (expiry 0)."""
    from stream_processor.runtime.accounts import Credentials
    from stream_processor.runtime.device_session import open_device_session
    from stream_processor.runtime.devices import config_path

    settings = rig.p.stack.settings()
    conn = json.loads(config_path(settings, gate.identity).read_text())["mqtt"]
    ca_file = Path(conn["ca_file"]) if conn.get("ca_file") else None
    open_device_session(gate.identity, Credentials(conn["username"], conn["password"]),
                        conn["host"], conn["port"], ca_file, session_expiry_s=0)  # fmt: skip


def commands(rig: ErasureRig) -> list[EdgeCommand]:
    """Records on the commands topic (the processor sends a withdrawal once; the rest
    are the erasure worker's re-sends)."""
    from tests.support.kafka import consumer

    reader = consumer(rig.p.stack, rig.topics.commands, auto_offset_reset="earliest",
                      consumer_timeout_ms=1500)  # fmt: skip
    try:
        return [decode_command(m.value) for m in reader]
    finally:
        reader.close()


def commands_sent(rig: ErasureRig) -> int:
    return len(commands(rig))


def gauge(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    (line,) = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


def test_a_lost_withdrawal_is_re_sent_until_the_gate_returns_and_acknowledges(
    rig: ErasureRig,
) -> None:
    metrics_port = free_ports(1)[0]
    rig.p.extra_env.update({
        "FACEGATE_ERASURE_WITHDRAWAL_RESEND_FIRST_S": "1",
        "FACEGATE_ERASURE_WITHDRAWAL_RESEND_MAX_S": "2",
        "FACEGATE_ERASURE_WITHDRAWAL_ALARM_AFTER_S": "3",
        "FACEGATE_ERASURE_METRICS_PORT": str(metrics_port),
        "FACEGATE_BRIDGE_COMMANDS_REPLAY_S": "0",
    })  # fmt: skip
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    rig.enroll(gate, OTHER, "biden.jpg", "CARD-BIDEN-1")
    subject, other = pseudonym(gate.secret, RESIDENT), pseudonym(gate.secret, OTHER)
    rig.apply_policy_and_consent([subject, other])
    rig.start_cloud()
    assert gate.start("agent1").stop() == 0  # its session exists; now it is offline

    withdrawal = ConsentRecord(
        tenant=TENANT, site=rig.site, subject=subject, purpose="*",
        status=ConsentStatus.WITHDRAWN, given_by=GivenBy.SELF, at_ms=int(time.time() * 1000),
    )  # fmt: skip
    prod = rig.producer()
    prod.send(rig.topics.consent, key=withdrawal.key, value=withdrawal.encode())
    prod.flush(30)
    wait_for(lambda: commands_sent(rig) >= 1, 120, "the processor's send")
    time.sleep(2)  # the bridge relays it into the device's queue ...
    drop_session(rig, gate)  # ... which is then gone
    # Pending for the device, and past the alarm bound while the gate stays away.
    wait_for(lambda: gauge(metrics_port, "facegate_withdrawals_pending") == 1, 60, "pending")
    wait_for(lambda: gauge(metrics_port, "facegate_withdrawal_devices_overdue") == 1, 60, "alarm")
    # The worker sets the gauge, then logs the alarm: a scrape can fall in between.
    alarm = "unacknowledged past 3 s by gate-1/cam-1"
    wait_for(lambda: alarm in rig.erasure_log(), 30, "the alarm in the erasure worker's log",
             seen=lambda: rig.erasure_log()[-3000:])  # fmt: skip
    # The operator sees it: which devices owe it, past the bound; never the pseudonym.
    listed = rig.cli("erasure", "withdrawals", "--json").stdout
    (pending,) = json.loads(listed)
    assert pending["devices_pending"] == ["gate-1/cam-1"] and pending["overdue"]
    assert pending["tenant"] == TENANT and pending["site"] == rig.site and pending["sends"] >= 1
    text = rig.cli("erasure", "withdrawals").stdout
    assert "OVERDUE" in text and "gate-1/cam-1" in text
    assert subject not in listed + text
    assert "2 residents, 2 templates" in gate.gallery()

    before = commands_sent(rig)
    gate.start("agent2")  # no queued command: only a re-send can reach it
    # The withdrawn face template leaves the gate (the resident keeps the key card).
    wait_for(lambda: "2 residents, 1 templates" in gate.gallery(), 90, "the template gone")
    # Both gauges are set on one tick, pending first: a scrape can fall in between.
    wait_for(lambda: gauge(metrics_port, "facegate_withdrawals_pending") == 0
             and gauge(metrics_port, "facegate_withdrawal_devices_overdue") == 0, 60,
             "acked, and no device overdue")  # fmt: skip
    assert "no withdrawal waiting for a gate" in rig.cli("erasure", "withdrawals").stdout
    assert gauge(metrics_port, "facegate_withdrawal_commands_resent_total") >= 1
    assert commands_sent(rig) > before  # what reached it went out after the session was gone
    assert gauge(metrics_port, 'facegate_withdrawal_acks_total{outcome="accepted"}') == 1
    # Done: no more sends; the logs name no pseudonym.
    resent = gauge(metrics_port, "facegate_withdrawal_commands_resent_total")
    time.sleep(4)  # the longest re-send wait (2 s) and two erasure ticks (1 s each)
    assert gauge(metrics_port, "facegate_withdrawal_commands_resent_total") == resent
    assert subject not in rig.erasure_log()
    # The processor's send and the worker's re-sends name it alike: keyed with the
    # deployment's secret, not the pseudonym's and time's unkeyed id.
    key = command_key(rig.p.stack.settings().state_dir)
    keyed = withdrawal_command(withdrawal, key).command_id
    assert {c.command_id for c in commands(rig)} == {keyed}
    assert keyed != legacy_withdrawal_id(withdrawal.key, withdrawal.at_ms)
