"""A key card handed over on request, for real: the face consent is withdrawn, the gate
drops the face template and opens for the card read by a real (HID line) reader, and the
card number travels and is kept only as a keyed hash."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from edge_agent.access.gate import LoggingActuator
from edge_agent.access.reader import HidLineReader, card_of_line
from edge_agent.agent import EdgeAgent
from edge_agent.commands.handler import CommandHandler
from edge_agent.errors import WireError
from edge_agent.gallery.credentials import CredentialHasher
from edge_agent.gallery.enroll import Enrollment, apply_enrollment
from edge_agent.gallery.store import GalleryFile
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.pseudonym import SiteSecret, consent_digest, pseudonym
from edge_agent.wire.commands import AckStatus, CommandType, decode_command, encode
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.audit.entries import EntryType
from stream_processor.errors import InvalidInput
from stream_processor.rights.db import open_rights_db
from stream_processor.rights.keycard_fulfil import card_digest, fulfilment
from stream_processor.rights.keycards import KeycardBook, KeycardError, KeycardRequest
from tests.conftest import FACEGATE
from tests.support.audit import AuditRig, Clock

SITE = SiteSecret("acme", "site-1", b"k" * 32)
GATE = DeviceIdentity("acme", "site-1", "gate-1", "cam-1")
KEY = bytes(range(32))
CARD = "0012345678"
RESIDENT = pseudonym(SITE, "resident-card")


def enrolled_gallery(tmp: Path) -> GalleryFile:
    g = GalleryFile(tmp / "g.fgg", KEY)
    v = np.random.default_rng(1).standard_normal((2, 192)).astype(np.float32)
    e = Enrollment(
        pseudonym=RESIDENT, embeddings=v / np.linalg.norm(v, axis=1, keepdims=True),
        model="m-192", consent_ref=consent_digest(SITE, "FORM-7"), minor=False,
        guardian_consent_ref=None,
    )  # fmt: skip
    g.update(lambda d: apply_enrollment(d, e, 0))
    return g


def register_card_bytes(card: str = CARD) -> bytes:
    f = fulfilment(
        "01900000-0000-7000-8000-000000000001", 1_790_000_000_000, "acme", "site-1", RESIDENT,
        card_digest(SITE, "acme", "site-1", card), 1_790_000_000_500,
    )  # fmt: skip
    return encode(f.command)


@pytest.mark.unit
def test_a_fulfilled_card_removes_the_face_template_and_opens_the_gate_with_the_card(
    tmp_path: Path,
) -> None:
    gallery = enrolled_gallery(tmp_path)
    fifo = tmp_path / "ttyACM0"
    os.mkfifo(fifo)
    reader = HidLineReader(fifo)
    actuator = LoggingActuator()
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    agent = EdgeAgent(
        identity=GATE, purpose="access_control", gallery=gallery,
        hasher=CredentialHasher(SITE.key), outbox=outbox, metrics=EdgeMetrics(),
        actuator=actuator, credentials=[reader],
    )  # fmt: skip
    assert RESIDENT in agent.lookup.face_subjects
    handler = CommandHandler(GATE, "access_control", gallery, outbox, EdgeMetrics(),
                             on_removed=agent.on_subject_removed)  # fmt: skip

    payload = register_card_bytes()
    assert CARD.encode() not in payload  # only the keyed hash travels
    ack = handler.handle_payload(payload)
    assert ack is not None and (ack.status, ack.type) == (AckStatus.DONE, CommandType.REGISTER_CARD)
    assert ack.templates_removed == 2
    (record,) = gallery.load().records
    assert record.templates == [] and record.key_id is None
    assert record.cards == [card_of_digest()]
    assert RESIDENT not in agent.lookup.face_subjects  # no face match can happen any more
    assert CARD.encode() not in (tmp_path / "g.fgg").read_bytes()
    # Repeated (at-least-once delivery): the same state, acknowledged again.
    assert handler.handle_payload(payload).status is AckStatus.DONE  # type: ignore[union-attr]
    assert gallery.load().records[0].cards == [card_of_digest()]

    # The reader types the number and Enter on its tty; a stranger's card opens nothing.
    assert agent.process_credentials() == []  # the device is open, nothing read yet
    writer = os.open(fifo, os.O_WRONLY)
    try:
        os.write(writer, f"{CARD}\r\n99999999\n;noise;\n".encode())
        events = agent.process_credentials()
    finally:
        os.close(writer)
        reader.close()
    kinds = [(e.kind.value, e.decision.value, e.subject) for e in events]
    assert kinds == [("key_card", "granted", RESIDENT), ("key_card", "denied", None)]
    assert actuator.openings == 1 and reader.rejected == 1


def card_of_digest() -> str:
    return card_digest(SITE, "acme", "site-1", CARD)


@pytest.mark.unit
def test_the_card_command_is_strict() -> None:
    good = msgspec.json.decode(register_card_bytes())
    assert decode_command(msgspec.json.encode(good)).card == card_of_digest()
    for change in (
        {"card": None},  # register_card without a card
        {"card": CARD},  # a number, not its keyed hash
        {"card": card_of_digest() + "0"},
        {"type": "erase_subject"},  # a card on another command
    ):
        bad = {k: v for k, v in {**good, **change}.items() if v is not None}
        with pytest.raises(WireError):
            decode_command(msgspec.json.encode(bad))
    with pytest.raises(InvalidInput, match="letters or digits"):
        card_digest(SITE, "acme", "site-1", "12 34")
    with pytest.raises(InvalidInput, match="site secret is for"):
        card_digest(SITE, "acme", "site-2", CARD)


@pytest.mark.unit
def test_reader_lines_bounded_and_a_missing_device_is_retried(tmp_path: Path) -> None:
    assert card_of_line(b"  ABCDEF0123\r") == "ABCDEF0123"
    assert card_of_line(b"1" * 33) is None and card_of_line(b"12-34") is None
    assert card_of_line("１２３".encode()) is None  # full-width digits are not ASCII
    now = [0.0]
    reader = HidLineReader(tmp_path / "absent", reopen_s=5, clock=lambda: now[0])
    assert reader.poll() == []
    path = tmp_path / "absent"
    os.mkfifo(path)
    assert reader.poll() == []  # still waiting out the back-off
    now[0] = 6.0
    writer_opened = reader.poll() == []  # opened now; nothing written yet
    w = os.open(path, os.O_WRONLY)
    try:
        os.write(w, b"1234")
        assert writer_opened and reader.poll() == []  # no Enter yet: kept, not guessed
        os.write(w, b"5678\n")
        assert [c.value for c in reader.poll()] == ["12345678"]
    finally:
        os.close(w)
        reader.close()


@pytest.mark.unit
def test_fulfilment_publishes_first_and_the_record_says_what_it_did(
    tmp_path: Path, clock: Clock, audit_rig: AuditRig
) -> None:
    calls: list[KeycardRequest] = []

    def failing(req: KeycardRequest) -> None:
        raise KeycardError("Kafka is down")

    db = open_rights_db(tmp_path / "r.sqlite")
    book = KeycardBook(db, audit=audit_rig.log, clock=clock, on_fulfilled=failing)
    req = book.request("acme", "site-1", channel="office", subject=RESIDENT)
    with pytest.raises(KeycardError, match="keyed hash"):
        book.fulfil(req.id, CARD)  # the number itself is refused
    with pytest.raises(KeycardError, match="Kafka is down"):
        book.fulfil(req.id, card_of_digest())
    assert book.get(req.id).status.value == "open"  # nothing changed
    book = KeycardBook(db, audit=audit_rig.log, clock=clock, on_fulfilled=calls.append)
    done = book.fulfil(req.id, card_of_digest())
    assert [c.card_ref for c in calls] == [card_of_digest()] and done.card_ref == card_of_digest()
    (entry,) = [e for e in audit_rig.log.entries() if e.type is EntryType.KEYCARD_FULFILLED]
    assert entry.body["face_consent_withdrawn"] is True
    assert entry.body["card_registered_on_gates"] is True


@pytest.mark.component
def test_cli_fulfil_withdraws_the_face_consent_and_sends_the_card_to_the_gates(
    running_stack: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from stream_processor.runtime.kafka_auth import Role
    from tests.support.kafka import private_host, revoke_private
    from tests.support.records import private_topics

    bootstrap = running_stack.settings().kafka_bootstrap
    topics = private_topics(bootstrap, "consent", "commands")
    # The office's own host: its state dir, the office's login, the production grants.
    grants = private_host(running_stack, tmp_path / "state", topics, Role.OFFICE)
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    env = {
        **os.environ, **running_stack.env, "FACEGATE_STATE_DIR": str(tmp_path / "state"),
        "FACEGATE_TOPIC_CONSENT": topics.consent, "FACEGATE_TOPIC_COMMANDS": topics.commands,
    }  # fmt: skip
    secret = tmp_path / "site.secret"
    secret.write_text(SITE.text())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FACEGATE, "keycard", *args], env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    made = run("request", "--tenant", "acme", "--site", "site-1", "--resident-id",
               "resident-card", "--site-secret", str(secret), "--unit", "1-101")  # fmt: skip
    assert made.returncode == 0, made.stderr
    request_id = made.stdout.split()[2]
    done = run("fulfil", request_id, "--card", CARD, "--site-secret", str(secret))
    assert done.returncode == 0, done.stderr
    assert "face consent withdrawn; card registered" in done.stdout

    consent = read_all(bootstrap, topics.consent)
    commands = read_all(bootstrap, topics.commands)
    (withdrawal,) = [msgspec.json.decode(v) for _, v in consent]
    assert (withdrawal["subject"], withdrawal["purpose"], withdrawal["status"]) == (
        RESIDENT, "*", "withdrawn",
    )  # fmt: skip
    (command,) = [decode_command(v) for _, v in commands]
    assert (command.type, command.subject, command.card) == (
        CommandType.REGISTER_CARD, RESIDENT, card_of_digest(),
    )  # fmt: skip
    everything = b"".join(v for _, v in consent + commands)
    assert CARD.encode() not in everything
    db = (tmp_path / "state" / "rights").glob("*.sqlite")
    assert all(CARD.encode() not in p.read_bytes() for p in db)


def read_all(bootstrap: str, topic: str, timeout_s: float = 20.0) -> list[tuple[bytes, bytes]]:
    from tests.support.kafka import consumer as make_consumer

    consumer = make_consumer(bootstrap, topic, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, enable_auto_commit=False)  # fmt: skip
    out: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not out and time.monotonic() < deadline:
            out += [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()
    return out
