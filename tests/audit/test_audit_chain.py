"""The audit chain: any changed byte, dropped or reordered entry is found and named."""

from __future__ import annotations

import json

import pytest

from stream_processor.audit.checkpoint import sign_checkpoint
from stream_processor.audit.keys import OperatorKey
from stream_processor.audit.verify import verify_log
from tests.support.audit import AuditRig, fill_log, pseudonym_of

pytestmark = pytest.mark.unit


def _verify(rig: AuditRig):  # type: ignore[no-untyped-def]
    return verify_log(rig.lines(), rig.checkpoint_lines(), rig.key.public)


@pytest.fixture
def filled(audit_rig: AuditRig) -> AuditRig:
    fill_log(audit_rig, [pseudonym_of("r-1"), pseudonym_of("r-2")], rounds=3)
    audit_rig.checkpointer.checkpoint()
    return audit_rig


def test_intact_log_verifies(filled: AuditRig) -> None:
    report = _verify(filled)
    assert report.ok, report.findings
    assert report.entries == len(filled.lines()) == 10
    assert report.last_checkpoint_seq == 9
    assert report.unsigned_tail == 0


def test_chain_links_every_entry(filled: AuditRig) -> None:
    entries = list(filled.log.entries())
    assert [e.seq for e in entries] == list(range(len(entries)))
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev == before.hash
        assert after.computed_hash() == after.hash


@pytest.mark.parametrize("victim", [0, 4, 9])
def test_one_changed_byte_is_named(filled: AuditRig, victim: int) -> None:
    lines = filled.lines()
    line = bytearray(lines[victim])
    # Change one digit of the timestamp: still valid JSON, different content.
    pos = line.index(b'"at_ms":') + len(b'"at_ms":') + 3
    line[pos] = ord("0") if line[pos] != ord("0") else ord("1")
    lines[victim] = bytes(line)
    filled.write_lines(lines)
    report = _verify(filled)
    assert not report.ok
    assert any(f.seq == victim and f.code == "hash_mismatch" for f in report.findings)
    assert f"entry seq={victim}" in str(report.findings[0])


def test_any_byte_anywhere_is_caught(filled: AuditRig) -> None:
    original = filled.lines()
    line = original[5]
    for pos in range(0, len(line) - 1, 7):
        lines = list(original)
        mutated = bytearray(line)
        mutated[pos] = (mutated[pos] + 1) % 128 or 1
        lines[5] = bytes(mutated)
        filled.write_lines(lines)
        report = _verify(filled)
        assert not report.ok, f"byte {pos} changed but the log verified"
        assert any(f.line == 6 for f in report.findings), report.findings


def test_recomputed_hash_still_breaks_the_chain(filled: AuditRig) -> None:
    """A forger who fixes the entry's own hash breaks the next link and the checkpoint."""
    lines = filled.lines()
    doc = json.loads(lines[3])
    doc["body"]["action"] = "withdrawn"
    from stream_processor.audit.entries import AuditEntry, decode_entry

    forged: AuditEntry = decode_entry(json.dumps(doc).encode())
    import msgspec

    forged = msgspec.structs.replace(forged, hash=forged.computed_hash())
    lines[3] = forged.line() + b"\n"
    filled.write_lines(lines)
    codes = {(f.seq, f.code) for f in _verify(filled).findings}
    assert (4, "chain_broken") in codes


def test_dropped_entry_is_named(filled: AuditRig) -> None:
    lines = filled.lines()
    del lines[4]
    filled.write_lines(lines)
    report = _verify(filled)
    assert not report.ok
    missing = [f for f in report.findings if f.code == "missing_entry"]
    assert missing and missing[0].seq == 4
    assert "entry 4 dropped or moved" in missing[0].detail


def test_dropped_last_entry_is_caught_by_the_checkpoint(filled: AuditRig) -> None:
    lines = filled.lines()
    filled.write_lines(lines[:-1])
    report = _verify(filled)
    assert [f.code for f in report.findings] == ["truncated"]
    assert report.findings[0].seq == 9


def test_reordered_entries_are_named(filled: AuditRig) -> None:
    lines = filled.lines()
    lines[2], lines[3] = lines[3], lines[2]
    filled.write_lines(lines)
    report = _verify(filled)
    named = {f.seq for f in report.findings}
    assert {2, 3} <= named
    assert any(f.code == "out_of_order" and f.seq == 2 for f in report.findings)


def test_entries_after_the_checkpoint_are_reported_unsigned(filled: AuditRig) -> None:
    fill_log(filled, [pseudonym_of("r-3")], rounds=1)
    report = _verify(filled)
    assert report.ok
    assert report.unsigned_tail == 3
    assert report.warnings


def test_appends_continue_the_chain_across_instances(filled: AuditRig) -> None:
    from stream_processor.audit.log import FileAuditLog

    other = FileAuditLog(filled.paths.log, fsync=False)
    fill_log(filled, [pseudonym_of("r-4")], rounds=1)
    from stream_processor.audit import record

    record.policy_version(other, tenant="acme", version=2, document={}, applied_by="x")
    fill_log(filled, [pseudonym_of("r-5")], rounds=1)
    assert _verify(filled).ok


def test_torn_last_line_is_dropped_on_next_append(filled: AuditRig) -> None:
    with open(filled.paths.log, "ab") as fh:
        fh.write(b'{"v":1,"seq":10,"at')
    from stream_processor.audit import record
    from stream_processor.audit.log import FileAuditLog

    fresh = FileAuditLog(filled.paths.log, fsync=False)
    appended = record.policy_version(fresh, tenant="a", version=3, document={}, applied_by="x")
    assert appended.entry.seq == 10
    assert _verify(filled).ok


class TestCheckpointForgery:
    def test_signature_by_another_key_is_refused(self, filled: AuditRig) -> None:
        head = filled.log.head()
        intruder = OperatorKey.generate()
        forged = sign_checkpoint(intruder, "test-log", head.seq, head.hash, 1)
        filled.paths.checkpoints.write_bytes(forged.line() + b"\n")
        report = _verify(filled)
        assert [f.code for f in report.findings] == ["wrong_key"]

    def test_forged_key_id_with_wrong_signature_is_refused(self, filled: AuditRig) -> None:
        head = filled.log.head()
        intruder = OperatorKey.generate()
        forged = sign_checkpoint(intruder, "test-log", head.seq, head.hash, 1)
        import msgspec

        forged = msgspec.structs.replace(forged, key_id=filled.key.key_id)
        filled.paths.checkpoints.write_bytes(forged.line() + b"\n")
        report = _verify(filled)
        assert [f.code for f in report.findings] == ["bad_signature"]

    def test_edited_checkpoint_fails(self, filled: AuditRig) -> None:
        line = filled.checkpoint_lines()[0]
        doc = json.loads(line)
        doc["seq"] = 5
        filled.paths.checkpoints.write_bytes(json.dumps(doc).encode() + b"\n")
        report = _verify(filled)
        assert any(f.code == "bad_signature" for f in report.findings)

    def test_rewritten_log_contradicts_signed_checkpoint(self, filled: AuditRig) -> None:
        """The operator rebuilds a whole consistent chain without entry 4: the
        signed checkpoint still names the old head, so the rewrite is caught."""
        from stream_processor.audit.entries import GENESIS, build_entry

        entries = list(filled.log.entries())
        del entries[4]
        prev, out = GENESIS, []
        for i, e in enumerate(entries):
            rebuilt = build_entry(
                seq=i,
                at_ms=e.at_ms,
                type=e.type,
                tenant=e.tenant,
                site=e.site,
                subject=e.subject,
                body=e.body,
                prev=prev,
            )
            out.append(rebuilt.line() + b"\n")
            prev = rebuilt.hash
        filled.write_lines(out)
        report = _verify(filled)
        assert any(f.code == "truncated" for f in report.findings)


def _append_many(path: str, n: int, tag: str, start: object) -> None:
    from pathlib import Path

    from stream_processor.audit import record
    from stream_processor.audit.log import FileAuditLog

    log = FileAuditLog(Path(path), fsync=False)
    start.wait()  # type: ignore[attr-defined]
    for i in range(n):
        record.retention_sweep(
            log,
            tenant="acme",
            site=tag,
            deleted={"face_match": i},
            cutoff_ms=i,
            policy_version=1,
        )


def test_several_processes_extend_one_chain(audit_rig: AuditRig) -> None:
    """Faust workers, the CLI and the web app append to one file: flock keeps one chain."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_append_many, args=(str(audit_rig.paths.log), 600, f"w{i}", start))
        for i in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    audit_rig.checkpointer.checkpoint()
    report = _verify(audit_rig)
    assert report.ok, report.findings[:3]
    assert report.entries == 1800
    sites = [e.site for e in audit_rig.log.entries()]
    assert {s: sites.count(s) for s in set(sites)} == {"w0": 600, "w1": 600, "w2": 600}
    # The writers really interleaved (otherwise the test proves nothing about the lock).
    assert sum(a != b for a, b in zip(sites, sites[1:], strict=False)) > 2


def test_dropped_entry_under_a_checkpoint_is_named_by_it(audit_rig: AuditRig) -> None:
    fill_log(audit_rig, [pseudonym_of("r-1")], rounds=2)  # seq 0..4
    audit_rig.checkpointer.checkpoint()  # at seq 4
    fill_log(audit_rig, [pseudonym_of("r-2")], rounds=1)  # seq 5..7
    lines = audit_rig.lines()
    del lines[4]
    audit_rig.write_lines(lines)
    report = _verify(audit_rig)
    assert any(
        f.code == "missing_entry" and f.seq == 4 and f.where.startswith("checkpoint")
        for f in report.findings
    ), report.findings
    assert not any(f.code == "truncated" for f in report.findings)


def test_a_forged_checkpoint_line_does_not_void_the_genuine_ones(filled: AuditRig) -> None:
    head = filled.log.head()
    forged = sign_checkpoint(OperatorKey.generate(), "test-log", head.seq, head.hash, 1)
    with open(filled.paths.checkpoints, "ab") as fh:
        fh.write(forged.line() + b"\n")
    report = _verify(filled)
    assert [f.code for f in report.findings] == ["wrong_key"]
    assert report.last_checkpoint_seq == head.seq


def test_audit_health_metrics(audit_rig: AuditRig) -> None:
    from prometheus_client import CollectorRegistry

    from stream_processor.audit.checkpoint import CheckpointFile
    from stream_processor.audit.metrics import AuditCollector

    registry = CollectorRegistry()
    files = CheckpointFile(audit_rig.paths.checkpoints)
    registry.register(AuditCollector(audit_rig.log, files, clock=audit_rig.clock))

    def value(name: str) -> float | None:
        return registry.get_sample_value(name)

    assert value("facegate_audit_entries") == 0
    assert value("facegate_audit_last_checkpoint_age_seconds") == -1
    fill_log(audit_rig, [pseudonym_of("r-1")], rounds=1)  # 3 entries
    assert value("facegate_audit_unsigned_entries") == 3
    audit_rig.checkpointer.checkpoint()
    audit_rig.clock.advance(90)
    assert value("facegate_audit_entries") == 3
    assert value("facegate_audit_unsigned_entries") == 0
    assert value("facegate_audit_last_checkpoint_age_seconds") == 90
    assert value("facegate_audit_unpublished_checkpoints") == 1  # no publisher in this rig
