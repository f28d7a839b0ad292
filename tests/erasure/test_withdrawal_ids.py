"""A withdrawal's command id does not lead back to its subject: keyed with the deployment's
secret, the same in every process that holds it, and an earlier version's unkeyed ids
(on disk, in flight) are still matched until done, then sealed."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.wire.commands import AckStatus, CommandAck, CommandType
from edge_agent.wire.events import UUID7_PATTERN
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure.withdrawal_ids import sealed
from stream_processor.erasure.withdrawal_tracker import Change, Timing, ingest
from stream_processor.erasure.withdrawals import WithdrawalBook, WithdrawalProgress
from stream_processor.errors import ConfigError
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.processor.ledger import (
    deterministic_uuid7,
    keyed_uuid7,
    legacy_withdrawal_id,
    withdrawal_command,
)
from stream_processor.runtime.command_key import KEY_BYTES, command_key, key_path

NOW = 1_800_000_000_000
KEY = bytes(range(32))
GATE = DeviceIdentity("acme", "north", "g1", "d1")
TIMING = Timing(1000, 60_000, 600_000, 7 * 86_400_000)
ROOT = Path(__file__).resolve().parents[2]

pseudonyms = st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: "ps1_" + h)
times = st.integers(0, 2**48 - 1)
#: HMAC pads a key with zero bytes: keys equal but for trailing zeros are one key.
keys = st.binary(min_size=32, max_size=32).filter(lambda k: k.rstrip(b"\0") != b"")


def withdrawal(subject: str = "ps1_" + "a" * 32, at_ms: int = NOW) -> ConsentRecord:
    return ConsentRecord(
        tenant="acme", site="north", subject=subject, purpose="*",
        status=ConsentStatus.WITHDRAWN, given_by=GivenBy.SELF, at_ms=at_ms,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(pseudonyms, times, keys, st.binary(max_size=32))
def test_without_the_key_a_pseudonym_and_time_do_not_reproduce_the_id(
    subject: str, at_ms: int, key: bytes, guess: bytes
) -> None:
    record = withdrawal(subject, at_ms)
    command_id = withdrawal_command(record, key).command_id
    assert re.fullmatch(UUID7_PATTERN, command_id)
    assert uuid.UUID(command_id).version == 7 and uuid.UUID(command_id).int >> 80 == at_ms
    # What someone holding the pseudonym can compute: the earlier unkeyed id, the same
    # seed hashed plainly, or the keyed derivation with a guessed key.
    attempts = {
        legacy_withdrawal_id(record.key, at_ms),
        deterministic_uuid7(at_ms, record.key + str(at_ms).encode()),
        deterministic_uuid7(at_ms, b"withdraw/" + record.key + b"@" + str(at_ms).encode()),
        keyed_uuid7(at_ms, b"", b"withdraw/" + record.key + b"@" + str(at_ms).encode()),
    }
    if guess.rstrip(b"\0") != key.rstrip(b"\0"):
        attempts.add(withdrawal_command(record, guess).command_id)
    assert command_id not in attempts


def test_the_id_is_stable_for_one_key_and_differs_per_record() -> None:
    first = withdrawal_command(withdrawal(), KEY)
    assert re.fullmatch(UUID7_PATTERN, first.command_id)
    assert withdrawal_command(withdrawal(), KEY) == first  # a retry or replay names it alike
    other_time = withdrawal_command(withdrawal(at_ms=NOW + 1), KEY)
    other_subject = withdrawal_command(withdrawal("ps1_" + "b" * 32), KEY)
    assert len({first.command_id, other_time.command_id, other_subject.command_id}) == 3


_DERIVE = """
import sys
from pathlib import Path
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.processor.ledger import withdrawal_command
from stream_processor.runtime.command_key import command_key
record = ConsentRecord(tenant="acme", site="north", subject="ps1_" + "a" * 32, purpose="*",
                       status=ConsentStatus.WITHDRAWN, given_by=GivenBy.SELF,
                       at_ms=int(sys.argv[2]))
print(withdrawal_command(record, command_key(Path(sys.argv[1]))).command_id)
"""


def derive_in_processes(*states: Path) -> list[str]:
    """Each state's id, derived by its own process; all started at once, so processes
    on one state race to make its key."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _DERIVE, str(s), str(NOW)], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        for s in states
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    return [out.strip() for out, _ in outs]


def test_processes_with_the_same_secret_derive_the_same_id(tmp_path: Path) -> None:
    host_a, host_b, stranger = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    # The processor and the erasure worker of host A start together on a fresh state.
    first, second = derive_in_processes(host_a, host_a)
    assert first == second
    assert key_path(host_a).stat().st_mode & 0o777 == 0o600
    assert len(command_key(host_a)) == KEY_BYTES
    # Nothing else is left in secrets/ or beside it (the temporary files are gone).
    assert [p.name for p in key_path(host_a).parent.iterdir()] == [key_path(host_a).name]
    assert [p.name for p in host_a.iterdir()] == ["secrets"]
    # Host B is given the deployment's secrets; a state without them has its own key.
    shutil.copytree(host_a / "secrets", host_b / "secrets")
    on_b, on_stranger = derive_in_processes(host_b, stranger)
    assert on_b == first and on_stranger != first


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = key_path(tmp_path)
    path.parent.mkdir(parents=True)
    for text in ("not hex", "ab" * 8):
        path.write_text(text)
        with pytest.raises(ConfigError, match="command-id key"):
            command_key(tmp_path)


def legacy_progress(record: ConsentRecord) -> WithdrawalProgress:
    """The row an earlier version kept: the command named by the unkeyed id."""
    command = withdrawal_command(record, KEY)
    command = msgspec.structs.replace(
        command, command_id=legacy_withdrawal_id(record.key, record.at_ms)
    )
    return WithdrawalProgress.start(command, record.key.decode(), [("g1", "d1")], record.at_ms)


def gate_ack(p: WithdrawalProgress) -> CommandAck:
    c = p.command
    return CommandAck(
        schema_version=1, command_id=c.command_id, type=CommandType.WITHDRAW_CONSENT,
        tenant=c.tenant, site=c.site, gate="g1", device="d1", subject=c.subject,
        status=AckStatus.DONE, templates_removed=1, outbox_events_purged=0, acked_at_ms=NOW,
    )  # fmt: skip


def ids(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT command_id FROM withdrawal_progress")}


def test_an_old_format_id_in_flight_is_matched_until_done_then_sealed(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "rights.sqlite", isolation_level=None)
    record = withdrawal()
    old = legacy_progress(record)
    # An earlier version's rows: one pending, one it finished (a bare id).
    done_before = legacy_progress(withdrawal("ps1_" + "d" * 32))
    WithdrawalBook(db).add(old, NOW)
    WithdrawalBook(db).add(done_before, NOW)
    db.execute("UPDATE withdrawal_progress SET done_ms = 1, consent_key = NULL, progress = NULL"
               " WHERE command_id = ?", (done_before.command.command_id,))  # fmt: skip
    book = WithdrawalBook(db, KEY, NOW)  # the new version opens the database
    legacy_done = done_before.command.command_id
    assert legacy_done not in ids(db) and sealed(legacy_done, KEY) in ids(db)
    # The ledger read again: the pending row is the same withdrawal, not a second one;
    # nor is the finished row started again.
    changes: list[Change] = [(record.key, record), (done_before.consent_key.encode(),
                                      withdrawal("ps1_" + "d" * 32))]  # fmt: skip
    assert ingest(book, changes, [GATE], NOW, TIMING) == 0
    assert [p.command.command_id for p in book.pending()] == [old.command.command_id]
    # The gate acknowledges the id it was sent (the old one): the withdrawal completes.
    after = book.update(old.command.command_id, lambda p: p.with_ack(gate_ack(p))[0], NOW)
    assert after is not None and after.done and book.pending() == []
    assert old.command.command_id not in ids(db)
    assert ids(db) == {sealed(old.command.command_id, KEY), sealed(legacy_done, KEY)}
    # Sealing happens once: a restart leaves the finished rows' ids as they are.
    WithdrawalBook(db, KEY, NOW)
    assert ids(db) == {sealed(old.command.command_id, KEY), sealed(legacy_done, KEY)}


def test_a_forgotten_old_format_row_is_sealed_and_a_keyed_one_kept(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "rights.sqlite", isolation_level=None)
    book = WithdrawalBook(db, KEY, NOW)
    old_record, new_record = withdrawal(), withdrawal("ps1_" + "e" * 32)
    old = legacy_progress(old_record)
    assert book.add(old, NOW)
    assert ingest(book, [(new_record.key, new_record)], [GATE], NOW, TIMING) == 1
    new_id = withdrawal_command(new_record, KEY).command_id
    for r in (old_record, new_record):
        assert book.forget_key(r.key.decode(), NOW) == 1
    assert ids(db) == {sealed(old.command.command_id, KEY), new_id}
    assert book.pending() == []


def test_a_book_without_the_key_only_reads(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "rights.sqlite", isolation_level=None)
    reader = WithdrawalBook(db)
    assert reader.pending() == []
    change: list[Change] = [(withdrawal().key, withdrawal())]
    with pytest.raises(ConfigError, match="command-id key"):
        ingest(reader, change, [GATE], NOW, TIMING)
