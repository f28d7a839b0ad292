"""Consent on the real brokers, both stores: granted → stored; withdrawn → later events
discarded, stored ones deleted, an edge command on the commands topic."""

from __future__ import annotations

import pytest

from edge_agent.wire.commands import CommandType, decode_command
from tests.conftest import wait_for
from tests.support.processor import BASE_POLICY, TENANT, Harness, make_event, subject

pytestmark = pytest.mark.component


def test_consent_granted_stored_withdrawn_discarded_deleted_and_commanded(
    harness: Harness,
) -> None:
    h = harness
    h.apply_policy(BASE_POLICY)
    out = h.cli(
        "consent", "grant", "--tenant", TENANT, "--site", "site-1", "--subject", subject(1),
        "--purpose", "access_control", "--consent-ref", "form-0001",
    )  # fmt: skip
    assert "granted" in out.stdout
    h.p.start("processor", "worker", name="p1")

    first = [make_event(subject_id=1, seq=i) for i in range(20)]
    no_consent = [make_event(subject_id=2, seq=100 + i) for i in range(5)]
    h.send_events(first + no_consent)
    wait_for(lambda: h.count() >= 20, 60, "granted face events stored")
    assert {e.event_id for e in h.store().events_of_subject(TENANT, "site-1", subject(1))} == {
        e.event_id for e in first
    }
    assert h.store().events_of_subject(TENANT, "site-1", subject(2)) == []
    row = h.store().get(first[0].event_id)
    assert row.expires_at_ms == first[0].occurred_at_ms + 30 * 86_400_000

    shown = h.cli(
        "consent", "show", "--tenant", TENANT, "--site", "site-1", "--subject", subject(1)
    )  # noqa: E501
    assert "access_control\tgranted\tby self" in shown.stdout

    h.cli(
        "consent", "withdraw", "--tenant", TENANT, "--site", "site-1", "--subject", subject(1),
        "--purpose", "access_control",
    )  # fmt: skip
    wait_for(lambda: h.count() == 0, 30, "stored face events of the subject deleted")

    def command_sent() -> bool:
        return any(
            decode_command(v).type is CommandType.WITHDRAW_CONSENT
            for _, v in h.read_topic(h.topics.commands, 1.0)
        )

    wait_for(command_sent, 30, "withdraw command on the commands topic")
    [(key, value)] = h.read_topic(h.topics.commands)
    cmd = decode_command(value)
    assert key == f"{TENANT}/site-1".encode()
    assert (cmd.tenant, cmd.site, cmd.subject, cmd.purpose) == (
        TENANT, "site-1", subject(1), "access_control",
    )  # fmt: skip

    later = [make_event(subject_id=1, seq=200 + i) for i in range(10)]
    key_card = make_event("key_card", subject_id=1, seq=300)
    h.send_events([*later, key_card])
    wait_for(lambda: h.count() == 1, 30, "the key-card event stored")
    import time

    time.sleep(1.5)
    assert h.count() == 1
    assert h.store().get(key_card.event_id) is not None

    # Discards are counted with a reason; no discard names the subject anywhere.
    counts = h.store().aggregates(TENANT, 0)
    by_outcome: dict[str, int] = {}
    for k, n in counts.items():
        if k.kind == "face_match":
            by_outcome[k.outcome] = by_outcome.get(k.outcome, 0) + n
    # The withdrawal took the 20 deleted rows' counts back with them (docs/processor.md,
    # "What the counts promise"): a stored count is a stored row.
    assert by_outcome == {"no_consent": 5, "consent_withdrawn": 10}
    assert sum(n for k, n in counts.items() if k.outcome == "stored") == h.count() == 1
    log = h.p.log("p1")
    assert subject(1) not in log and subject(2) not in log
    for _, dead in h.read_topic(h.topics.dlq, 1.0):
        assert b"ps1_" not in dead
