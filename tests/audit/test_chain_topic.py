"""The multi-host audit chain on the real Kafka: facts from several hosts, one chaining
writer, every host's verified copy, a stale writer fenced, forged appends refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer

from stream_processor.audit import record
from stream_processor.audit.chain_topic import ChainTopicReader
from stream_processor.audit.entries import EntryType, build_entry
from stream_processor.audit.errors import ChainFork, ChainUnavailable, IdentifierInAudit
from stream_processor.audit.facts import KafkaFactPublisher, encode_fact, new_fact
from stream_processor.audit.keys import OperatorKey
from stream_processor.audit.log import FileAuditLog
from stream_processor.audit.topic_log import TopicAuditLog
from stream_processor.audit.verify import verify_log
from tests.audit.conftest import Chain, Running
from tests.conftest import wait_for
from tests.support.audit import pseudonym_of

pytestmark = pytest.mark.component


def _consent(log: TopicAuditLog, subject: str, ref: str) -> int:
    return record.consent_changed(
        log, tenant="acme", site="north", subject=subject, purpose="access_control",
        granted=True, by_guardian=False, evidence_ref=ref,
    ).entry.seq


def _verifies(log: TopicAuditLog, key: OperatorKey) -> None:
    report = verify_log(log.path.read_bytes().splitlines(keepends=True), [], key.public)
    assert report.ok, report.findings


def test_facts_from_two_hosts_make_one_chain_that_both_hosts_verify(
    chain: Chain, tmp_path: Path
) -> None:
    running = Running(chain.writer())
    try:
        a, b = chain.host("a"), chain.host("b")
        seqs = []
        for i in range(6):
            seqs.append(_consent(a, pseudonym_of(f"a-{i}"), f"form-a{i}"))
            seqs.append(_consent(b, pseudonym_of(f"b-{i}"), f"form-b{i}"))
        assert seqs == list(range(12))  # each append returns its place in the one chain
    finally:
        running.halt()
    assert a.head() == b.head() and a.head().seq == 11
    assert a.path.read_bytes() == b.path.read_bytes()
    key = OperatorKey.load_or_create(tmp_path / "keys")
    _verifies(a, key)
    # Each host keeps the openings of the subjects it committed to, and only those.
    assert a._openings is not None and b._openings is not None
    mine, theirs = pseudonym_of("a-0"), pseudonym_of("b-0")
    assert [o.seq for o in a._openings.for_subject(mine)] == [0]
    assert a._openings.for_subject(theirs) == [] and b._openings.for_subject(mine) == []
    assert running.writer.stats.chained == 12 and running.writer.stats.takeovers == 1


def test_a_standby_writer_takes_over_and_the_chain_goes_on(chain: Chain) -> None:
    first = Running(chain.writer())
    host = chain.host("a", wait_s=60)
    assert _consent(host, pseudonym_of("r-1"), "f1") == 0
    second = Running(chain.writer())
    assert _consent(host, pseudonym_of("r-2"), "f2") == 1
    active, standby = (first, second) if first.writer.active else (second, first)
    assert not standby.writer.active
    active.halt()
    active.writer.close()  # leaves the group: the standby is assigned partition 0
    chain.writers.remove(active.writer)
    try:
        assert _consent(host, pseudonym_of("r-3"), "f3") == 2
        assert standby.writer.active and standby.writer.stats.takeovers == 1
    finally:
        standby.halt()
    assert [e.seq for e in host.entries()] == [0, 1, 2]


def test_a_stale_writer_is_fenced_and_appends_nothing(chain: Chain) -> None:
    stale = chain.writer()
    while not stale.active:
        stale.step(timeout_ms=200)
    # A successor initialises the same transactional id: what happens when the group
    # moved partition 0 while the stale writer was paused and did not notice.
    successor = KafkaProducer(
        bootstrap_servers=chain.bootstrap, **chain.auth, transactional_id=f"w-{chain.tag}",
        acks="all", enable_idempotence=True,
    )
    successor.init_transactions()
    publisher = KafkaFactPublisher(chain.bootstrap, chain.topics.audit_facts, chain.auth)
    fact = new_fact(EntryType.POLICY_VERSION, at_ms=1, tenant="acme", site=None,
                    subject=None, body={"version": 1})
    publisher.publish(fact)
    for _ in range(20):
        stale.step(timeout_ms=200)
        if stale.stats.fenced:
            break
    assert stale.stats.fenced == 1 and stale.stats.chained == 0
    reader = ChainTopicReader(chain.bootstrap, chain.topics.audit_chain, chain.auth)
    assert list(reader.read(0, reader.end())) == []  # nothing of the fenced batch is visible
    successor.close()
    publisher.close()
    stale.close()
    chain.writers.remove(stale)
    # The fact was not consumed: the next writer chains it, once.
    running = Running(chain.writer())
    try:
        host = chain.host("a")
        _consent(host, pseudonym_of("r-1"), "f1")
    finally:
        running.halt()
    assert [(e.seq, e.type) for e in host.entries()] == [
        (0, EntryType.POLICY_VERSION), (1, EntryType.CONSENT_CHANGED)]
    reader.close()


def test_readers_refuse_a_double_append_and_stop_at_a_fork(chain: Chain) -> None:
    running = Running(chain.writer())
    host = chain.host("a")
    try:
        _consent(host, pseudonym_of("r-1"), "f1")
        _consent(host, pseudonym_of("r-2"), "f2")
    finally:
        running.halt()
    head = host.head()
    entries = list(host.entries())
    forger = KafkaProducer(bootstrap_servers=chain.bootstrap, **chain.auth, acks="all")
    # A stale writer's double append: entry 1 again, with other content, linked to 0.
    repeat = build_entry(seq=1, at_ms=5, type=EntryType.POLICY_VERSION, tenant="acme",
                         site=None, subject=None, body={"version": 9}, prev=entries[0].hash)
    forger.send(chain.topics.audit_chain, key=b"x" * 32, value=repeat.line()).get(timeout=10)
    other = chain.host("b")  # a host that reads the whole topic afresh
    assert other.head() == head and host.head() == head
    assert other.refused == 1 and host.refused == 1
    # A next entry that does not link to the head: a fork, refused loudly, never merged.
    fork = build_entry(seq=2, at_ms=6, type=EntryType.POLICY_VERSION, tenant="acme",
                       site=None, subject=None, body={"version": 9}, prev="1" * 64)
    forger.send(chain.topics.audit_chain, key=b"y" * 32, value=fork.line()).get(timeout=10)
    forger.close()
    with pytest.raises(ChainFork):
        host.sync()
    assert list(FileAuditLog.entries(host)) == entries  # the copy as it was


def test_without_a_writer_an_append_fails_cleanly_and_leaves_nothing(chain: Chain) -> None:
    host = chain.host("a", wait_s=2)
    with pytest.raises(ChainUnavailable, match="facegate audit writer"):
        _consent(host, pseudonym_of("r-1"), "f1")
    assert host.path.read_bytes() == b""
    assert host._openings is not None and host._openings.for_subject(pseudonym_of("r-1")) == []
    # An identifier is refused before anything is published.
    with pytest.raises(IdentifierInAudit):
        record.retention_sweep(host, tenant="acme", site="north",
                               deleted={pseudonym_of("r-1"): 1}, cutoff_ms=1, policy_version=1)


def test_the_writer_skips_a_fact_that_names_a_subject_in_the_clear(chain: Chain) -> None:
    bad = new_fact(EntryType.POLICY_VERSION, at_ms=1, tenant="acme", site=None,
                   subject=None, body={"who": pseudonym_of("r-9")})
    forger = KafkaProducer(bootstrap_servers=chain.bootstrap, **chain.auth, acks="all")
    forger.send(chain.topics.audit_facts, key=bad.id.encode(), value=encode_fact(bad))
    forger.send(chain.topics.audit_facts, key=b"junk", value=b"{not json").get(timeout=10)
    forger.close()
    running = Running(chain.writer())
    try:
        host = chain.host("a")
        assert _consent(host, pseudonym_of("r-1"), "f1") == 0
    finally:
        running.halt()
    assert running.writer.stats.refused == 2
    assert pseudonym_of("r-9").encode() not in host.path.read_bytes()


def test_a_reader_that_serves_the_file_keeps_it_synced_in_the_background(
    chain: Chain,
) -> None:
    running = Running(chain.writer())
    a, b = chain.host("a"), chain.host("b")
    stop = b.keep_synced(interval_s=0.2)
    try:
        for i in range(3):
            _consent(a, pseudonym_of(f"r-{i}"), f"f{i}")
        # Host B's file (what its web app serves) follows without B calling anything.
        wait_for(lambda: b.path.read_bytes() == a.path.read_bytes(), 30, "B's copy synced")
    finally:
        stop.set()
        running.halt()
    assert len(b.path.read_bytes().splitlines()) == 3


def test_a_retried_append_waits_for_its_first_fact_and_is_chained_once(chain: Chain) -> None:
    host = chain.host("a", wait_s=2)
    subject = pseudonym_of("r-1")
    for _ in range(2):  # no writer: the caller retries, as the erasure worker does
        with pytest.raises(ChainUnavailable):
            _consent(host, subject, "f1")
    running = Running(chain.writer())
    try:
        host._wait_s = 30
        assert _consent(host, subject, "f1") == 0
        assert _consent(host, subject, "f2") == 1  # a different fact is a new one
    finally:
        running.halt()
    assert [e.seq for e in host.entries()] == [0, 1]
    assert running.writer.stats.chained == 2
    assert host._openings is not None
    assert [o.seq for o in host._openings.for_subject(subject)] == [0, 1]
