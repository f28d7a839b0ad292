"""Audit openings on two hosts of one chain (``FACEGATE_AUDIT_MODE=topic`` with a shared
``FACEGATE_RIGHTS_DSN``): an entry appended by host A's process is opened by a subject
export on host B, and after the erasure's receipt neither host can open it; only the
receipt holder can. Two state directories, one PostgreSQL database, the suite's Kafka."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_processor.audit import record
from stream_processor.audit.openings import SharedOpenings
from stream_processor.audit.wiring import Audit, open_audit
from stream_processor.rights.db import connect_rights_db
from stream_processor.rights.export import build_export
from stream_processor.rights.keycards import KeycardBook
from stream_processor.rights.receipts import ErasureReceipt, issue_receipt
from stream_processor.runtime.kafka_auth import Role
from tests.audit.conftest import Chain, Running
from tests.conftest import StackHandle
from tests.support.audit import make_claims, pseudonym_of, uuid7
from tests.support.kafka import private_host, revoke_private, share_login

pytestmark = pytest.mark.component

SUBJECT, OTHER = pseudonym_of("R-1"), pseudonym_of("R-2")


@pytest.fixture
def two_hosts(
    chain: Chain, running_stack: StackHandle, pg_cluster: object,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest,
) -> Iterator[tuple[Audit, Audit]]:  # fmt: skip
    from tests.support.store import new_pg_database

    for name, value in running_stack.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FACEGATE_AUDIT_DIR", raising=False)  # each host its own copy
    monkeypatch.setenv("FACEGATE_AUDIT_MODE", "topic")
    monkeypatch.setenv("FACEGATE_AUDIT_CHAIN_WAIT_S", "30")
    monkeypatch.setenv("FACEGATE_TOPIC_AUDIT_FACTS", chain.topics.audit_facts)
    monkeypatch.setenv("FACEGATE_TOPIC_AUDIT_CHAIN", chain.topics.audit_chain)
    monkeypatch.setenv("FACEGATE_RIGHTS_DSN", new_pg_database(pg_cluster))
    states = [tmp_path / "host-a", tmp_path / "host-b"]
    # Each host logs in as the office, held to the production plan on these topic names.
    grants = private_host(running_stack, states[0], chain.topics, Role.OFFICE)
    share_login(running_stack, states[1], Role.OFFICE)
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    opened = [open_audit(states[0])]
    # The operator key is the deployment's, not a host's: host B is given host A's.
    shutil.copytree(states[0] / "secrets", states[1] / "secrets", dirs_exist_ok=True)
    opened.append(open_audit(states[1]))
    running = Running(chain.writer())
    try:
        yield opened[0], opened[1]
    finally:
        running.halt()
        for a in opened:
            a.close()


def _opened(audit: Audit, subject: str, *receipts: ErasureReceipt) -> dict[int, str]:
    """seq → type of the entries this host's subject export opens for ``subject``."""
    db = connect_rights_db(audit.paths.secrets.parent)
    try:
        doc = build_export("acme", "north", subject, audit_entries=audit.log.entries(),
                           openings=audit.openings, keycards=KeycardBook(db), receipts=None,
                           brought_receipts=receipts)  # fmt: skip
    finally:
        db.close()
    return {e.seq: e.type for e in doc.audit_entries}


def test_host_b_opens_what_host_a_appended_until_the_erasure(
    two_hosts: tuple[Audit, Audit],
) -> None:
    a, b = two_hosts
    assert isinstance(a.openings, SharedOpenings) and isinstance(b.openings, SharedOpenings)
    seqs = {
        who: record.erasure_requested(a.log, request_id=uuid7(), tenant="acme", site="north",
                                      subject=who, purposes=None, channel="office").entry.seq
        for who in (SUBJECT, OTHER)
    }  # fmt: skip
    on_b = _opened(b, SUBJECT)
    assert on_b.get(seqs[SUBJECT]) == "erasure_requested"
    assert seqs[OTHER] not in on_b  # another subject's entry stays closed

    # The erasure ends on host B: the receipt takes the openings, every host forgets them.
    receipt = issue_receipt(make_claims(uuid7(), subject=SUBJECT), sink=b.log, key=b.key,
                            log_id=b.settings.log_id, openings=b.openings)  # fmt: skip
    assert seqs[SUBJECT] in {o.seq for o in receipt.openings}
    for host in (a, b):
        assert seqs[SUBJECT] not in _opened(host, SUBJECT)
    assert _opened(a, SUBJECT, receipt).get(seqs[SUBJECT]) == "erasure_requested"
    assert seqs[OTHER] in _opened(a, OTHER)  # the erasure forgot only its subject


def test_with_a_log_file_per_host_the_openings_stay_on_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_cluster: object,
) -> None:
    """In the file mode every host has its own chain whose entry numbers repeat across
    hosts: sharing one openings table would open host A's entry 0 with host B's salt.
    Each host keeps its own file there, even with a shared rights database."""
    from stream_processor.audit.openings import OpeningStore
    from tests.support.store import new_pg_database

    monkeypatch.setenv("FACEGATE_AUDIT_MODE", "file")
    monkeypatch.setenv("FACEGATE_RIGHTS_DSN", new_pg_database(pg_cluster))
    audit = open_audit(tmp_path / "host-a")
    try:
        assert isinstance(audit.openings, OpeningStore)
    finally:
        audit.close()
