"""The agent's decision path, outbox, commands, metrics and config — without a broker."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.access.gate import LoggingActuator
from edge_agent.access.inputs import LineFileCredentials, SimulatedCredentials
from edge_agent.agent import EdgeAgent
from edge_agent.commands.handler import CommandHandler
from edge_agent.gallery.credentials import CredentialHasher
from edge_agent.gallery.enroll import Enrollment, apply_enrollment
from edge_agent.gallery.store import GalleryFile
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.outbox.sqlite_outbox import ACKS, EVENTS
from edge_agent.pseudonym import SiteSecret, consent_digest, pseudonym
from edge_agent.video.sources import ImageFolderSource
from edge_agent.vision.recognizer import RecognitionPolicy, Recognizer
from edge_agent.vision.track import IouTracker
from edge_agent.wire import Decision, EventKind, decode_event
from edge_agent.wire.commands import (
    AckStatus,
    CommandType,
    EdgeCommand,
    decode_ack,
)
from edge_agent.wire.ids import new_event_id
from edge_agent.wire.topics import DeviceIdentity
from tests.edge.fakes import FixedEmbedder, ScriptedDetector, face_at
from tests.support.edge import cli
from tests.support.privacy import ACK_KEYS, assert_anonymized

pytestmark = pytest.mark.unit

SECRET = b"s" * 32
KEY = bytes(range(32))
IDENT = DeviceIdentity("t1", "site-1", "gate-1", "dev-1")
SITE = SiteSecret(IDENT.tenant, IDENT.site, SECRET)
ALICE = np.array([1, 0, 0, 0], dtype=np.float32)
STRANGER = np.array([0, 1, 0, 0], dtype=np.float32)
FORBIDDEN = ["resident-alice", "resident-bob", "CARD-ALICE-77", "7731"]


def make_agent(tmp: Path, script=None, *, max_rows: int = 10_000, clock=time.time):  # type: ignore[no-untyped-def]
    hasher = CredentialHasher(SECRET)
    gallery = GalleryFile(tmp / "g.fgg", KEY)
    enroll = Enrollment(
        pseudonym=pseudonym(SITE, "resident-alice"), embeddings=ALICE[None], model="fake-emb",
        consent_ref=consent_digest(SITE, "C-ALICE"), minor=False, guardian_consent_ref=None,
        cards=(hasher.card("CARD-ALICE-77"),), pin=hasher.pin("7731"),
    )
    gallery.update(lambda d: apply_enrollment(d, enroll, 0))
    metrics = EdgeMetrics()
    recognizer = Recognizer(
        ScriptedDetector(script or []), FixedEmbedder({1: ALICE, 4: STRANGER}),
        RecognitionPolicy(unknown_after_frames=2), IouTracker(),
        observe=metrics.observe_stage,
    )
    creds = SimulatedCredentials()
    agent = EdgeAgent(
        identity=IDENT, purpose="access_control", gallery=gallery, hasher=hasher,
        outbox=SqliteOutbox(tmp / "outbox.sqlite", max_rows=max_rows), metrics=metrics,
        actuator=LoggingActuator(), recognizer=recognizer, credentials=[creds], clock=clock,
    )
    return agent, creds


def frame():  # type: ignore[no-untyped-def]
    from edge_agent.video.sources import Frame

    return Frame(np.zeros((480, 640, 3), dtype=np.uint8), 0, time.monotonic())


def queued(outbox: SqliteOutbox) -> list[tuple[str, bytes]]:
    return [(r.kind, r.payload) for r in outbox.peek(0, 100_000)]


def check_all(outbox: SqliteOutbox) -> None:
    for kind, payload in queued(outbox):
        assert_anonymized(payload, FORBIDDEN, allowed=ACK_KEYS if kind == ACKS else None)


def test_face_card_pin_and_manual_share_one_decision_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = [[face_at(100, 100), face_at(400, 100)]] * 3
    agent, creds = make_agent(tmp_path, script)
    for _ in range(3):
        agent.process_frame(frame())
    creds.present_card("CARD-ALICE-77")
    creds.enter_pin("7731")
    creds.present_card("STOLEN-1")
    creds.manual_open("visitor")
    agent.process_credentials()
    events = [decode_event(p) for _, p in queued(agent.outbox)]
    got = [(e.kind, e.decision, e.subject is not None) for e in events]
    assert got == [
        (EventKind.FACE_MATCH, Decision.GRANTED, True),
        (EventKind.UNKNOWN_FACE, Decision.DENIED, False),
        (EventKind.KEY_CARD, Decision.GRANTED, True),
        (EventKind.PIN, Decision.GRANTED, True),
        (EventKind.KEY_CARD, Decision.DENIED, False),
        (EventKind.MANUAL_OPEN, Decision.GRANTED, False),
    ]
    alice = pseudonym(SITE, "resident-alice")
    assert {e.subject for e in events if e.subject} == {alice}
    assert [e.seq for e in events] == list(range(6))
    face = events[0]
    assert face.model == "fake-det+fake-emb" and face.consent_ref == consent_digest(SITE, "C-ALICE")
    assert events[2].consent_ref is None  # the face consent is not the card's
    assert face.score_band is not None and face.purpose == "access_control"
    assert agent.actuator.openings == 4  # type: ignore[attr-defined]
    check_all(agent.outbox)
    m = agent.metrics.registry
    assert m.get_sample_value(
        "facegate_edge_decisions_total", {"kind": "key_card", "decision": "denied"}
    ) == 1
    assert m.get_sample_value("facegate_edge_stage_seconds_count", {"stage": "decision"}) == 2
    assert m.get_sample_value("facegate_edge_stage_seconds_count", {"stage": "detect"}) == 3


def test_no_pseudonym_or_credential_in_any_metric_label_or_log(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("DEBUG")
    agent, creds = make_agent(tmp_path, [[face_at(100, 100)]] * 2)
    agent.process_frame(frame())
    creds.present_card("CARD-ALICE-77")
    agent.process_credentials()
    handler = CommandHandler(IDENT, "access_control", agent.gallery, agent.outbox, agent.metrics)
    handler.handle(command(CommandType.ERASE_SUBJECT, pseudonym(SITE, "resident-alice")))
    agent.housekeeping(connected=False)
    from prometheus_client import generate_latest

    text = generate_latest(agent.metrics.registry).decode()
    assert not re.search(r"ps1_[0-9a-f]{32}", text)
    assert "CARD-ALICE-77" not in text and "resident-alice" not in text
    for metric in agent.metrics.registry.collect():
        for sample in metric.samples:
            for value in sample.labels.values():
                assert not value.startswith(("ps1_", "c1_", "p1_"))
    logs = caplog.text
    assert not re.search(r"ps1_[0-9a-f]{32}", logs) and "CARD-ALICE-77" not in logs


def command(kind: CommandType, subject: str, site: str = "site-1", purpose=None) -> EdgeCommand:  # type: ignore[no-untyped-def]
    return EdgeCommand(
        schema_version=1, command_id=new_event_id(), type=kind, tenant="t1", site=site,
        subject=subject, issued_at_ms=int(time.time() * 1000), purpose=purpose,
    )


def test_withdraw_removes_template_purges_queue_and_acks_durably(tmp_path) -> None:  # type: ignore[no-untyped-def]
    alice = pseudonym(SITE, "resident-alice")
    agent, creds = make_agent(tmp_path, [[face_at(100, 100)]] * 1)
    agent.process_frame(frame())
    for _ in range(3):
        creds.present_card("CARD-ALICE-77")
    creds.manual_open()
    agent.process_credentials()
    assert agent.outbox.depth() == 5
    handler = CommandHandler(
        IDENT, "access_control", agent.gallery, agent.outbox, agent.metrics,
        on_removed=agent.on_subject_removed,
    )
    ack = handler.handle(command(CommandType.WITHDRAW_CONSENT, alice))
    assert (ack.status, ack.templates_removed, ack.outbox_events_purged) == (
        AckStatus.DONE, 1, 4
    )
    rows = queued(agent.outbox)
    assert [k for k, _ in rows] == [EVENTS, ACKS]
    assert decode_event(rows[0][1]).kind is EventKind.MANUAL_OPEN
    assert decode_ack(rows[1][1]) == ack
    check_all(agent.outbox)
    # The template is gone at once: the same face is now an unknown face ...
    agent.recognizer.detector.script = [[face_at(400, 300)]] * 0 + [[face_at(100, 100)]] * 2  # type: ignore[union-attr]
    agent.recognizer.detector.calls = 0  # type: ignore[union-attr]
    agent.recognizer.tracker.tracks.clear()  # type: ignore[union-attr]
    agent.process_frame(frame())
    agent.process_frame(frame())
    kinds = [decode_event(p).kind for k, p in queued(agent.outbox) if k == EVENTS]
    assert kinds == [EventKind.MANUAL_OPEN, EventKind.UNKNOWN_FACE]
    # ... while the key card still opens the gate (never locked out).
    creds.present_card("CARD-ALICE-77")
    assert agent.process_credentials()[0].decision is Decision.GRANTED
    # The ack survives a reopen of the outbox (it is in SQLite, not in memory).
    agent.outbox.close()
    again = SqliteOutbox(tmp_path / "outbox.sqlite")
    assert [k for k, _ in queued(again)].count(ACKS) == 1


def test_erase_removes_cards_too_and_other_sites_commands_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    alice = pseudonym(SITE, "resident-alice")
    agent, creds = make_agent(tmp_path)
    handler = CommandHandler(
        IDENT, "access_control", agent.gallery, agent.outbox, agent.metrics,
        on_removed=agent.on_subject_removed,
    )
    other = handler.handle(command(CommandType.ERASE_SUBJECT, alice, site="site-2"))
    assert other.status is AckStatus.FAILED and other.detail == "not_this_site"
    unrelated = handler.handle(
        command(CommandType.WITHDRAW_CONSENT, alice, purpose="marketing")
    )
    assert unrelated.templates_removed == 0 and unrelated.detail == "purpose_not_used"
    ack = handler.handle(command(CommandType.ERASE_SUBJECT, alice))
    assert ack.templates_removed == 1
    creds.present_card("CARD-ALICE-77")
    assert agent.process_credentials()[0].decision is Decision.DENIED
    again = handler.handle(command(CommandType.ERASE_SUBJECT, alice))
    assert (again.status, again.templates_removed) == (AckStatus.DONE, 0)
    assert handler.handle_payload(b'{"not": "a command"}') is None
    assert agent.metrics.registry.get_sample_value(
        "facegate_edge_commands_total", {"type": "unknown", "status": "invalid"}
    ) == 1


def test_outbox_ceiling_is_counted_and_logged_never_silent(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    agent, creds = make_agent(tmp_path, max_rows=100)
    for _ in range(120):
        creds.present_card("STOLEN")
    agent.process_credentials()  # one batch over the ceiling: refused as a whole
    assert agent.outbox.depth() == 0
    for _ in range(100):
        creds.present_card("STOLEN")
    agent.process_credentials()
    creds.present_card("STOLEN")
    agent.process_credentials()
    assert agent.outbox.depth() == 100
    assert agent.metrics.registry.get_sample_value("facegate_edge_outbox_rejected_total") == 121
    assert "outbox full" in caplog.text


def test_events_older_than_the_maximum_age_are_purged_acks_kept(tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = [time.time() - 3 * 86400]
    agent, creds = make_agent(tmp_path, clock=lambda: now[0])
    agent.outbox_max_age_s = 86400
    creds.present_card("STOLEN")
    agent.process_credentials()
    handler = CommandHandler(IDENT, "access_control", agent.gallery, agent.outbox,
                             agent.metrics, clock=lambda: now[0])
    handler.handle(command(CommandType.ERASE_SUBJECT, "ps1_" + "0" * 32))
    now[0] = time.time()
    creds.present_card("STOLEN")
    agent.process_credentials()
    agent.housekeeping()
    kinds = [k for k, _ in queued(agent.outbox)]
    assert kinds == [ACKS, EVENTS]
    assert agent.metrics.registry.get_sample_value(
        "facegate_edge_outbox_purged_total", {"reason": "max_age"}
    ) == 1


def test_old_outbox_files_are_migrated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(tmp_path / "old.sqlite")
    db.executescript(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL"
        " UNIQUE, subject TEXT, occurred_at_ms INTEGER NOT NULL, payload BLOB NOT NULL);"
        "INSERT INTO outbox (event_id, subject, occurred_at_ms, payload) VALUES"
        " ('e1', NULL, 1, x'7b7d');"
    )
    db.commit()
    db.close()
    rows = SqliteOutbox(tmp_path / "old.sqlite").peek(0, 10)
    assert [(r.event_id, r.kind) for r in rows] == [("e1", EVENTS)]


def test_folder_source_counts_undecodable_frames_and_keeps_going(tmp_path) -> None:  # type: ignore[no-untyped-def]
    img = np.full((48, 64, 3), 128, dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), img)
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    cv2.imwrite(str(tmp_path / "c.png"), img)
    errors = []
    src = ImageFolderSource(tmp_path, fps=0, on_decode_error=lambda: errors.append(1))
    frames = list(src.frames())
    assert [f.index for f in frames] == [0, 2] and len(errors) == 1


def test_line_file_credentials_follow_appends_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "creds.txt"
    path.write_text("card OLD-1\n")
    reader = LineFileCredentials(path)
    assert reader.poll() == []
    with open(path, "a") as fh:
        fh.write("card C-1\npin 1234\nmanual\ngarbage\npin 12")
    got = reader.poll()
    assert [(c.type, c.value) for c in got] == [
        ("card", "C-1"), ("pin", "1234"), ("manual", "manual")
    ]
    assert "C-1" not in repr(got[0])
    with open(path, "a") as fh:
        fh.write("34\n")
    assert [(c.type, c.value) for c in reader.poll()] == [("pin", "1234")]


def test_validate_config_prints_errors_and_exits_non_zero(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "recognition: {threshold: 1.5}\nvideo: {kind: rtsp, uri: nowhere}\nsurprise: 1\n"
        "access: {kind: line_file}\n"
    )
    result = cli("edge", "validate-config", str(bad), check=False)
    assert result.returncode == 1
    for needle in ("recognition.threshold", "surprise", "rtsp", "access.path"):
        assert needle in result.stderr
    missing = tmp_path / "missing.yaml"
    missing.write_text("detector: {path: nowhere.onnx}\n")
    result = cli("edge", "validate-config", str(missing), check=False)
    assert result.returncode == 1 and "detector.path" in result.stderr
    result = cli("edge", "validate-config", "--no-files", str(missing), check=False)
    assert result.returncode == 0
    env = cli(
        "edge", "validate-config", "--no-files", str(missing), check=False,
        env={"FACEGATE_EDGE_RECOGNITION__THRESHOLD": "7"},
    )
    assert env.returncode == 1 and "recognition.threshold" in env.stderr


def test_metrics_and_health_endpoint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import urllib.request

    from edge_agent.health import make_server, serve_in_background

    agent, creds = make_agent(tmp_path)
    creds.present_card("CARD-ALICE-77")
    agent.process_credentials()
    agent.housekeeping(connected=False)
    server = make_server("127.0.0.1", 0, agent.metrics.registry, lambda: agent.health(10))
    serve_in_background(server)
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        text = urllib.request.urlopen(base + "/metrics").read().decode()
        assert "facegate_edge_outbox_depth 1.0" in text
        health = json.loads(urllib.request.urlopen(base + "/healthz").read())
        assert health["ok"] is True and health["outbox_depth"] == 1
    finally:
        server.shutdown()


def test_ceiling_counts_exactly_when_purges_left_gaps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outbox = SqliteOutbox(tmp_path / "o.sqlite", max_rows=10)
    alice = pseudonym(SITE, "resident-alice")
    from edge_agent.decision import credential, event_maker

    def maker(subject):  # type: ignore[no-untyped-def]
        return event_maker(IDENT, "access_control",
                           credential(EventKind.KEY_CARD, subject, None), int(time.time() * 1000))

    outbox.append_many([maker(alice if i % 2 else None) for i in range(10)])
    assert outbox.purge_subject(alice) == 5  # ids 1..10 with holes: the bound says 9-10
    outbox.append_many([maker(None) for _ in range(5)])  # exact count: 5 + 5 fits
    assert outbox.depth() == 10
    from edge_agent.errors import OutboxFull

    with pytest.raises(OutboxFull):
        outbox.append_many([maker(None)])
    assert [decode_event(r.payload).seq for r in outbox.peek(0, 100)] == [
        0, 2, 4, 6, 8, 10, 11, 12, 13, 14
    ]


def test_outbox_files_are_owner_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    outbox.append_many([])
    for name in ("o.sqlite", "o.sqlite-wal"):
        path = tmp_path / name
        if path.exists():
            assert path.stat().st_mode & 0o077 == 0, name


def test_a_missing_dependency_names_the_install_command(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    from click.testing import CliRunner

    from edge_agent.cli import edge

    loaded = ("edge_agent.vision", "edge_agent.compose")
    for name in [m for m in sys.modules if m.startswith(loaded)]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = CliRunner().invoke(edge, ["calibrate", "--config", "nowhere.yaml", "."])
    assert result.exit_code == 1
    assert "pip install 'facegate[edge]'" in result.output


def test_a_running_agent_picks_up_new_enrollments(tmp_path) -> None:  # type: ignore[no-untyped-def]
    agent, creds = make_agent(tmp_path)
    agent.gallery_reload_s = 0.0
    agent.reload_gallery(force=True)
    creds.present_card("NEW-CARD")
    assert agent.process_credentials()[0].decision is Decision.DENIED
    hasher = CredentialHasher(SECRET)
    newcomer = Enrollment(
        pseudonym=pseudonym(SITE, "resident-bob"), embeddings=np.zeros((0, 4), np.float32),
        model=None, consent_ref=None, minor=False, guardian_consent_ref=None,
        cards=(hasher.card("NEW-CARD"),),
    )
    time.sleep(0.01)  # a distinct mtime
    GalleryFile(tmp_path / "g.fgg", KEY).update(lambda d: apply_enrollment(d, newcomer, 0))
    agent.housekeeping()
    creds.present_card("NEW-CARD")
    assert agent.process_credentials()[0].decision is Decision.GRANTED
    assert agent.metrics.registry.get_sample_value("facegate_edge_gallery_residents") == 2
