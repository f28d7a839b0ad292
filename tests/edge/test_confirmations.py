"""Delivery confirmation on the gate: the wire message, the outbox keeping sent rows
until confirmed, and the re-send decision (pure units on a real SQLite outbox)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from edge_agent.errors import WireError
from edge_agent.outbox import SqliteOutbox
from edge_agent.outbox.sqlite_outbox import ACKS, EVENTS
from edge_agent.uplink.confirmations import Confirmations
from edge_agent.wire import encode_event
from edge_agent.wire.bounds import MAX_SAFE_INT
from edge_agent.wire.commands import AckStatus, CommandAck, CommandType
from edge_agent.wire.commands import encode as encode_command
from edge_agent.wire.confirms import (
    DeliveryConfirmation,
    confirm_topic,
    confirmation_for,
    confirmation_json_schema,
    decode_confirmation,
    encode_confirmation,
)
from edge_agent.wire.ids import new_event_id
from edge_agent.wire.topics import DeviceIdentity
from tests.support.processor import make_event

REPO = Path(__file__).resolve().parents[2]
IDENT = DeviceIdentity("acme", "site-1", "gate-1", "cam-1")
NOW_MS = 1_800_000_000_000


def confirmation(low: int, high: int, ident: DeviceIdentity = IDENT) -> bytes:
    return encode_confirmation(
        DeliveryConfirmation(
            schema_version=1, tenant=ident.tenant, site=ident.site, gate=ident.gate,
            device=ident.device, from_seq=low, through_seq=high, confirmed_at_ms=NOW_MS,
        )
    )  # fmt: skip


def fill(outbox: SqliteOutbox, n: int) -> list[Any]:
    made = [make_event("key_card", site="site-1") for _ in range(n)]
    return outbox.append_many([lambda seq, e=e: msgspec.structs.replace(e, seq=seq) for e in made])


def ack() -> CommandAck:
    return CommandAck(
        schema_version=1, command_id=new_event_id(NOW_MS), type=CommandType.WITHDRAW_CONSENT,
        tenant="acme", site="site-1", gate="gate-1", device="cam-1",
        subject="ps1_" + "a" * 32, status=AckStatus.DONE, templates_removed=1,
        outbox_events_purged=0, acked_at_ms=NOW_MS,
    )  # fmt: skip


# -- the wire message ---------------------------------------------------------------


def test_confirmation_round_trips_and_names_its_topic() -> None:
    got = confirmation_for(confirmation(3, 9), IDENT)
    assert (got.from_seq, got.through_seq) == (3, 9)
    assert confirm_topic(IDENT) == "facegate/v1/acme/site-1/gate-1/cam-1/confirms"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"from_seq": 10, "through_seq": 9}, "invalid_field"),
        ({"through_seq": None}, "invalid_field"),
        ({"command_id": new_event_id(NOW_MS)}, "invalid_field"),  # both kinds at once
        ({"command_id": "not-a-uuid", "from_seq": None, "through_seq": None}, "invalid_field"),
        ({"through_seq": MAX_SAFE_INT + 1}, "out_of_range"),
        ({"from_seq": -1}, "out_of_range"),
        ({"extra": 1}, "unknown_field"),
        ({"schema_version": 2}, "invalid_field"),
        ({"device": "CAM/1"}, "invalid_field"),
    ],
)
def test_malformed_confirmations_are_refused(change: dict[str, Any], reason: str) -> None:
    doc = json.loads(confirmation(1, 2)) | change
    with pytest.raises(WireError) as err:
        decode_confirmation(json.dumps(doc).encode())
    assert err.value.reason == reason


def test_an_acks_confirmation_names_its_command_only() -> None:
    command_id = new_event_id(NOW_MS)
    doc = json.loads(confirmation(1, 2))
    del doc["from_seq"], doc["through_seq"]
    got = confirmation_for(json.dumps(doc | {"command_id": command_id}).encode(), IDENT)
    assert (got.command_id, got.from_seq, got.through_seq) == (command_id, None, None)


def test_another_devices_confirmation_is_refused() -> None:
    other = DeviceIdentity("acme", "site-1", "gate-1", "cam-2")
    with pytest.raises(WireError, match="another device"):
        confirmation_for(confirmation(0, 5, other), IDENT)


def test_published_schema_is_current_and_bounded() -> None:
    path = REPO / "docs" / "schema" / "delivery-confirmation-v1.json"
    published = json.loads(path.read_text())
    assert published == json.loads(json.dumps(confirmation_json_schema())), (
        "run: facegate edge export-schema"
    )
    props = published["$defs"]["DeliveryConfirmation"]
    assert props["additionalProperties"] is False
    for name in ("from_seq", "through_seq", "confirmed_at_ms"):
        field = props["properties"][name]
        field = field["anyOf"][0] if "anyOf" in field else field
        assert field["minimum"] >= 0 and field["maximum"] <= MAX_SAFE_INT


# -- the outbox -----------------------------------------------------------------------


def test_a_sent_event_stays_until_a_confirmation_covers_it(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    events = fill(outbox, 10)
    the_ack = ack()
    outbox.append_ack(the_ack)
    rows = outbox.peek(0, 100)
    outbox.mark_sent([r.id for r in rows], NOW_MS)
    assert outbox.depth() == 11 and outbox.unconfirmed() == 11
    assert outbox.oldest_sent() == (rows[0].id, NOW_MS)
    # A range with a hole: seq 4 and 5 stay (a broker crash lost them, say).
    assert outbox.confirm(0, 3) == 4
    assert outbox.confirm(6, 9) == 4
    left = outbox.peek(0, 100)
    assert [r.event_id for r in left if r.kind == EVENTS] == [e.event_id for e in events[4:6]]
    assert [r.kind for r in left].count(ACKS) == 1  # acks are never confirmed by seq
    assert outbox.confirm(0, MAX_SAFE_INT) == 2 and outbox.depth() == 1
    assert outbox.confirm_ack(new_event_id(NOW_MS)) == 0  # another command's
    assert outbox.confirm_ack(the_ack.command_id) == 1 and outbox.depth() == 0


def test_an_outbox_from_before_confirmations_gets_its_seq_from_the_payload(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL
          UNIQUE, subject TEXT, occurred_at_ms INTEGER NOT NULL, payload BLOB NOT NULL,
          topic_kind TEXT NOT NULL DEFAULT 'events');
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('next_seq', 42);
        """
    )
    old_ack = ack()
    db.execute(
        "INSERT INTO outbox (event_id, occurred_at_ms, payload, topic_kind) VALUES (?, ?, ?, ?)",
        ("ack:" + new_event_id(NOW_MS), NOW_MS, encode_command(old_ack), ACKS),
    )
    old = msgspec.structs.replace(make_event("pin", site="site-1"), seq=41)
    db.execute(
        "INSERT INTO outbox (event_id, subject, occurred_at_ms, payload) VALUES (?, ?, ?, ?)",
        (old.event_id, old.subject, old.occurred_at_ms, encode_event(old)),
    )
    db.commit()
    db.close()
    outbox = SqliteOutbox(path)
    assert outbox.confirm(40, 40) == 0
    assert outbox.confirm(41, 41) == 1 and outbox.depth() == 1
    assert outbox.confirm_ack(old_ack.command_id) == 1 and outbox.depth() == 0


# -- when to send again -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW_MS / 1000

    def __call__(self) -> float:
        return self.now


def test_unconfirmed_rows_are_sent_again_from_the_oldest_once_per_timeout(
    tmp_path: Path,
) -> None:
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    fill(outbox, 5)
    rows = outbox.peek(0, 10)
    clock = Clock()
    confirms = Confirmations(outbox, IDENT, timeout_s=30, clock=clock)
    outbox.mark_sent([r.id for r in rows], NOW_MS)
    assert confirms.rewind(rows[-1].id) is None  # not timed out yet
    clock.now += 31
    assert confirms.rewind(rows[-1].id) == rows[0].id - 1
    assert confirms.rewind(rows[-1].id) is None  # the re-sent rows get their timeout
    # Confirmed meanwhile: nothing left to send again.
    confirms.receive(confirmation(0, 4))
    assert confirms.apply() == 5 and confirms.confirmed == 5
    clock.now += 31
    assert confirms.rewind(rows[-1].id) is None
    assert confirms.resends == 1


def test_re_send_rounds_back_off_while_nothing_is_confirmed(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    fill(outbox, 2)
    rows = outbox.peek(0, 10)
    clock = Clock()
    confirms = Confirmations(outbox, IDENT, timeout_s=10, clock=clock, draw=lambda: 0.0)
    outbox.mark_sent([rows[0].id], NOW_MS)  # the first is sent; nothing ever confirmed

    def rounds_within(seconds: int) -> int:
        before = confirms.resends
        for _ in range(seconds):
            clock.now += 1
            confirms.rewind(rows[-1].id)
        return confirms.resends - before

    # Rounds at 10 s, then 20 s later, then 40 s later: the cloud is down.
    assert rounds_within(10) == 1
    assert rounds_within(19) == 0 and rounds_within(1) == 1
    assert rounds_within(39) == 0 and rounds_within(1) == 1
    # A confirmation (the cloud is back) resets the wait to one timeout.
    outbox.mark_sent([rows[1].id], int(clock.now * 1000))
    confirms.receive(confirmation(0, 0))
    assert confirms.apply() == 1
    assert rounds_within(9) == 0 and rounds_within(1) == 1


def test_a_confirmation_for_another_device_or_malformed_removes_nothing(
    tmp_path: Path,
) -> None:
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    fill(outbox, 3)
    confirms = Confirmations(outbox, IDENT, timeout_s=30)
    confirms.receive(confirmation(0, 2, DeviceIdentity("acme", "site-1", "gate-1", "cam-9")))
    confirms.receive(b'{"schema_version":1}')
    confirms.receive(b"\xff")
    assert confirms.apply() == 0
    assert confirms.invalid == 3 and outbox.depth() == 3


def test_the_agent_reports_sent_but_unconfirmed_rows(tmp_path: Path) -> None:
    import os

    from edge_agent.access.gate import LoggingActuator
    from edge_agent.agent import EdgeAgent
    from edge_agent.gallery.credentials import CredentialHasher
    from edge_agent.gallery.store import GalleryFile
    from edge_agent.metrics import EdgeMetrics

    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    fill(outbox, 4)
    rows = outbox.peek(0, 10)
    outbox.mark_sent([r.id for r in rows[:3]], NOW_MS)
    outbox.confirm(0, 0)
    agent = EdgeAgent(
        identity=IDENT, purpose="access_control",
        gallery=GalleryFile(tmp_path / "g.fgg", os.urandom(32)),
        hasher=CredentialHasher(os.urandom(32)), outbox=outbox, metrics=EdgeMetrics(),
        actuator=LoggingActuator(),
    )  # fmt: skip
    agent.housekeeping(connected=True)
    value = agent.metrics.registry.get_sample_value
    assert value("facegate_edge_outbox_unconfirmed") == 2.0
    assert value("facegate_edge_outbox_depth") == 3.0


def _rounds_at(confirms: Confirmations, clock: Clock, last: int, seconds: int) -> list[int]:
    at = []
    for s in range(seconds):
        clock.now += 1
        if confirms.rewind(last) is not None:
            at.append(s + 1)
    return at


def test_a_long_outage_re_sends_at_capped_intervals_then_progress_resets(
    tmp_path: Path,
) -> None:
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    fill(outbox, 2)
    rows = outbox.peek(0, 10)
    clock = Clock()
    confirms = Confirmations(outbox, IDENT, timeout_s=5, clock=clock, cap_s=30, jitter=0.0)
    outbox.mark_sent([rows[0].id], NOW_MS)
    # 5 s, then +10, +20, and every 30 s after: 6 rounds in 150 s, not 30.
    assert _rounds_at(confirms, clock, rows[-1].id, 150) == [5, 15, 35, 65, 95, 125]
    outbox.mark_sent([rows[1].id], int(clock.now * 1000))
    confirms.receive(confirmation(0, 0))
    assert confirms.apply() == 1
    assert _rounds_at(confirms, clock, rows[-1].id, 5) == [5]


def _fixed(value: float) -> Callable[[], float]:
    return lambda: value


def test_jitter_spreads_two_gates_that_stalled_together(tmp_path: Path) -> None:
    firsts = []
    for i, draw in enumerate((0.0, 0.99)):
        outbox = SqliteOutbox(tmp_path / f"o{i}.sqlite")
        fill(outbox, 1)
        row = outbox.peek(0, 1)[0]
        clock = Clock()
        confirms = Confirmations(
            outbox, IDENT, timeout_s=10, clock=clock, cap_s=120, jitter=0.5,
            draw=_fixed(draw),
        )  # fmt: skip
        outbox.mark_sent([row.id], NOW_MS)
        firsts.append(_rounds_at(confirms, clock, row.id, 40))
    # Both re-send once at the timeout; the next round lands 20 s vs ~10 s later.
    assert firsts[0] == [10, 30] and firsts[1][0] == 10 and firsts[1][1] < 25
