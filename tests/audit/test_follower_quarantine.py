"""The audit follower survives hostile ledger records (real Kafka): each is dead-lettered
with its reason and coordinates and counted, the valid records after it are logged, and
a failing audit log is waited out, never quarantined."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from stream_processor.audit.follower import LedgerAuditor, OffsetFile, follow
from stream_processor.audit.log import FileAuditLog
from stream_processor.dead_letter import DeadLetter
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.quarantine import (
    ConsumerMetrics,
    KafkaDeadLetters,
    Quarantine,
    Refusal,
)
from stream_processor.runtime.kafka_auth import Role
from tests.conftest import StackHandle, wait_for
from tests.support.kafka import grant_pipeline, login_kwargs, revoke_private
from tests.support.records import dead_letters, json_values, private_topics, produce

T0 = 1_790_000_000_000
SUBJECT = "ps1_" + "ab" * 16


def grant(at: int = 1) -> tuple[bytes, bytes]:
    rec = ConsentRecord(
        tenant="acme", site="north", subject=SUBJECT, purpose="access_control",
        status=ConsentStatus.GRANTED, given_by=GivenBy.SELF, evidence_ref="form-1", at_ms=T0 + at,
    )  # fmt: skip
    return rec.key, rec.encode()


def policy_version(version: int) -> bytes:
    from stream_processor.policy.retention import PolicyVersion

    doc = {
        "tenant": "acme",
        "legal_ceiling": "3y",
        "purposes": {"access_control": {}},
        "camera_purposes": ["access_control"],
        "retention": {
            "face_match": {"access_control": "30d"},
            "unknown_face": {"access_control": 0},
        },
        "transport": {"raw_retention": "1d", "dlq_retention": "7d"},
    }
    return PolicyVersion(
        tenant="acme", version=version, document=doc, applied_by="ops", applied_at_ms=T0
    ).encode()


HOSTILE_CONSENT: list[tuple[bytes | None, bytes | None, str]] = [
    (b"acme/north/" + SUBJECT.encode() + b"/access_control", b"\xff\xfe not json", "bad_json"),
    (b"acme/north/x/access_control", b'{"tenant": 1}', "invalid_field"),
    (grant()[0], grant()[1][:-1] + b',"image":"AAAA"}', "invalid_field"),  # unknown field
    (grant()[0], grant()[1].replace(str(T0 + 1).encode(), b"9" * 400), "invalid_field"),
    (b"acme/south/" + SUBJECT.encode() + b"/access_control", grant()[1], "key_mismatch"),
    (b"not-a-ledger-key", None, "bad_key"),
    (b"acme/north/resident-bob/access_control", None, "unprocessable"),  # not a pseudonym
]  # a record without a key: the broker itself refuses it on a compacted topic


@pytest.mark.component
def test_follower_quarantines_hostile_ledger_records_and_goes_on(
    running_stack: StackHandle, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from stream_processor.policy.keys import history_key

    bootstrap = running_stack.settings().kafka_bootstrap
    topics = private_topics(bootstrap, "consent", "policies", "dlq")
    # The follower and its dead-letter sink run as the audit role, held to the plan.
    grants = grant_pipeline(
        running_stack, topics, "facegate-processor", "facegate-processor-erasure"
    )
    request.addfinalizer(lambda: revoke_private(running_stack, grants))
    auth = login_kwargs(running_stack, Role.AUDIT)
    consent, policies, dlq = topics.consent, topics.policies, topics.dlq
    produce(bootstrap, consent, [(k, v) for k, v, _ in HOSTILE_CONSENT] + [grant(5)])
    produce(bootstrap, policies, [(history_key("acme", 1), b"[1, 2"),
                                  (history_key("acme", 2), policy_version(2))])  # fmt: skip

    registry = CollectorRegistry()
    q = Quarantine("audit_follower", ConsumerMetrics(registry), keep_bytes=False)
    sink = KafkaDeadLetters(bootstrap, dlq, auth=auth)
    log = FileAuditLog(tmp_path / "audit.jsonl")
    stop = threading.Event()
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(
            follow(
                bootstrap,
                LedgerAuditor(log, consent, policies),
                OffsetFile(tmp_path / "offsets.json"),
                stop.is_set,
                200,
                quarantine=q,
                dead_letters=sink,
                auth=auth,
            )
        ),  # fmt: skip
        daemon=True,
    )
    worker.start()
    try:
        expected = len(HOSTILE_CONSENT) + 1
        wait_for(lambda: len(dead_letters(bootstrap, dlq, 1.0)) >= expected, 60, "dead letters")
        wait_for(lambda: len(_entries(tmp_path)) >= 2, 60, "the valid records logged")
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(30)
        sink.close()
    assert result == [2]
    kinds = [(e["type"], e["body"].get("action") or e["body"].get("version"))
             for e in _entries(tmp_path)]  # fmt: skip
    assert kinds == [("consent_changed", "granted"), ("policy_version", 2)]

    letters = dead_letters(bootstrap, dlq)
    consent_letters = [d for d in letters if d.source_topic == consent]
    got = [(d.source_offset, d.reason) for d in consent_letters]
    assert got == [(i, reason) for i, (_, _, reason) in enumerate(HOSTILE_CONSENT)]
    (bad_policy,) = [d for d in letters if d.source_topic == policies]
    assert (bad_policy.source_offset, bad_policy.reason) == (0, "invalid_policy")
    assert all(_private(d) for d in letters)
    for reason in {r for _, _, r in HOSTILE_CONSENT}:
        n = sum(1 for _, _, r in HOSTILE_CONSENT if r == reason)
        sample = registry.get_sample_value(
            "facegate_consumer_quarantined_total", {"consumer": "audit_follower", "reason": reason}
        )
        assert sample == n, reason
    offsets = json.loads((tmp_path / "offsets.json").read_text())
    assert offsets[f"{consent}/0"] == len(HOSTILE_CONSENT) + 1  # committed past the poison


def _private(letter: DeadLetter) -> bool:
    """A ledger's dead letter keeps no byte of the record, and no pseudonym in the detail."""
    return (
        letter.raw_len == 0
        and letter.fields_seen == []
        and "ps1_" not in letter.detail
        and "resident" not in (letter.detail)
    )


def _entries(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


class FailingThenFine:
    """An audit sink whose disk is full for the first ``failures`` appends."""

    def __init__(self, inner: FileAuditLog, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def append(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return self.inner.append(*args, **kwargs)


def test_a_failing_audit_log_is_waited_out_not_quarantined(tmp_path: Path) -> None:
    from stream_processor.quarantine import Coordinates, guard_blocking

    registry = CollectorRegistry()
    q = Quarantine("audit_follower", ConsumerMetrics(registry), keep_bytes=False)
    sink = FailingThenFine(FileAuditLog(tmp_path / "audit.jsonl"), failures=3)
    auditor = LedgerAuditor(sink, "c", "p")
    letters: list[bytes] = []
    slept: list[float] = []
    key, value = grant()

    class Letters:
        def send(self, k: bytes, v: bytes) -> None:
            letters.append(v)

    refusal = guard_blocking(
        lambda: _refusal(auditor.take("c", 0, 7, key, value)), value, Coordinates("c", 0, 7),
        q, Letters(), slept.append,
    )  # fmt: skip
    assert refusal is None and letters == [] and slept == [0.5, 1.0, 2.0]
    assert len(_entries(tmp_path)) == 1
    retries = registry.get_sample_value(
        "facegate_consumer_outage_retries_total", {"consumer": "audit_follower"}
    )
    assert retries == 3


def _refusal(out: object) -> Refusal | None:
    return out if isinstance(out, Refusal) else None


REASONS = {
    "bad_json", "invalid_field", "unknown_field", "missing_field", "key_mismatch",
    "missing_key", "invalid_policy", "bad_key",
}  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, topic=st.sampled_from(["c", "p"]), key=st.binary(max_size=40))
def test_reading_arbitrary_json_refuses_with_a_reason_or_logs(
    tmp_path_factory: pytest.TempPathFactory, value: object, topic: str, key: bytes
) -> None:
    """Arbitrary JSON under any key is refused with a reason (or, if it is a valid record,
    logged): reading never raises."""
    log = FileAuditLog(tmp_path_factory.mktemp("audit") / "audit.jsonl")
    out = LedgerAuditor(log, "c", "p").take(topic, 0, 0, key, json.dumps(value).encode())
    if isinstance(out, Refusal):
        assert out.reason in REASONS, out
