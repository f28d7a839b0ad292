"""A key-card request closed without a card is on the record with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_processor.audit.entries import EntryType
from stream_processor.rights.db import open_rights_db
from stream_processor.rights.keycards import KeycardBook, KeycardError, KeycardStatus
from tests.support.audit import AuditRig, Clock, pseudonym_of

pytestmark = pytest.mark.unit


@pytest.fixture
def book(tmp_path: Path, clock: Clock, audit_rig: AuditRig) -> KeycardBook:
    return KeycardBook(open_rights_db(tmp_path / "rights.sqlite"), audit=audit_rig.log, clock=clock)


def test_cancellation_is_audited_with_its_reason_and_no_free_text(
    book: KeycardBook, audit_rig: AuditRig, clock: Clock
) -> None:
    subject = pseudonym_of("resident-7")
    req = book.request("acme", "north", channel="office", subject=subject, unit="7-701")
    clock.advance(3600)
    done = book.cancel(req.id, "Mr Wang moved to Beijing", "moved_out")
    assert done.status is KeycardStatus.CANCELLED and done.note == "Mr Wang moved to Beijing"
    (entry,) = [e for e in audit_rig.log.entries() if e.type is EntryType.KEYCARD_CANCELLED]
    assert entry.body == {"request_id": req.id, "reason": "moved_out", "waited_s": 3600}
    assert (entry.tenant, entry.site) == ("acme", "north")
    text = audit_rig.paths.log.read_text()
    # The note (a name, a city) and the subject stay out of the published log.
    assert "Wang" not in text and "Beijing" not in text and subject not in text


def test_a_cancellation_needs_a_known_reason_and_an_open_request(book: KeycardBook) -> None:
    req = book.request("acme", "north", channel="office", unit="7-702")
    with pytest.raises(KeycardError, match="reason must be one of"):
        book.cancel(req.id, "no", "operator_said_so")
    assert book.get(req.id).status is KeycardStatus.OPEN  # nothing changed, nothing logged
    book.cancel(req.id, "withdrawn at the desk")
    with pytest.raises(KeycardError, match="cancelled, not open"):
        book.cancel(req.id, "again")


def test_the_rights_db_zeroes_what_it_forgets(tmp_path: Path) -> None:
    """An erasure clears a key-card request's subject: the pseudonym is not left behind
    in a free page or the WAL of the rights DB."""
    path = tmp_path / "rights.sqlite"
    db = open_rights_db(path)
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    book = KeycardBook(db)
    subject = pseudonym_of("resident-gone")
    for unit in range(50):
        book.request("acme", "north", channel="office", unit=f"1-{unit:03d}", subject=subject)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert book.forget_subject("acme", "north", subject) == 50
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert subject.encode() not in files
