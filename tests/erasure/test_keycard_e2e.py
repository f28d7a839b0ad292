"""A key card handed over at the office, end to end on the real brokers: the office CLI →
Kafka → bridge → MQTT → the running gate, which drops the face template and opens for the
card its reader reads; the face consent is withdrawn on the ledger."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_agent.pseudonym import pseudonym
from tests.conftest import wait_for
from tests.erasure.conftest import RESIDENT, ErasureRig
from tests.support.edge import cli

pytestmark = pytest.mark.e2e

CARD = "77001234"


def listing(gate: Any) -> dict[str, dict[str, Any]]:
    out = cli("edge", "gallery", "list", "--json", "--config", str(gate.config)).stdout
    return {r["pseudonym"]: r for r in json.loads(out)}


def test_a_fulfilled_key_card_removes_the_face_template_and_opens_the_gate(
    rig: ErasureRig,
) -> None:
    gate = rig.gate("gate1")
    rig.enroll(gate, RESIDENT, "obama.jpg", "CARD-OBAMA-1")
    subject = pseudonym(gate.secret, RESIDENT)
    rig.apply_policy_and_consent([subject])
    rig.start_cloud()
    agent = gate.start("agent")
    assert listing(gate)[subject]["templates"] == 1

    secret = str(gate.folder / "site.secret")
    made = rig.cli(
        "keycard", "request", "--tenant", "acme", "--site", rig.site,
        "--resident-id", RESIDENT, "--site-secret", secret, "--unit", "4-404",
    )  # fmt: skip
    request_id = made.stdout.split()[2]
    done = rig.cli("keycard", "fulfil", request_id, "--card", CARD, "--site-secret", secret)
    assert "face consent withdrawn; card registered" in done.stdout

    wait_for(lambda: listing(gate)[subject]["templates"] == 0, 120, "template removed")
    assert listing(gate)[subject]["cards"] == 2  # the enrolled card and the new one
    assert CARD.encode() not in (gate.folder / "gallery.fgg").read_bytes()

    # The gate's reader reads the new card: the gate opens for the resident.
    with open(gate.folder / "credentials.txt", "a") as fh:
        fh.write(f"card {CARD}\n")
    wait_for(lambda: "gate opened (key_card)" in agent.text(), 60, "gate opened by the card")
